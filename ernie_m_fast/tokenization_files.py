"""Files of an ErnieM tokenizer directory: reading, writing, and fetching them from the Hub.

Layout (transformers' names, so either library loads the other's output):
  sentencepiece.bpe.model   the sentencepiece BPE model
  vocab.txt                 one token a line; the line number is the id
  tokenizer_config.json     init arguments (do_lower_case, special tokens, model_max_length, ...)
  special_tokens_map.json   the special tokens by role
"""

from __future__ import annotations

import json
import os
from typing import Any

SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
REQUIRED_FILES = (SENTENCEPIECE_FILE,)
OPTIONAL_FILES = (VOCAB_FILE, CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, ADDED_TOKENS_FILE)


def read_vocab_lines(path: str) -> list[str]:
    """The tokens of vocab.txt, one per line, in id order."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def vocab_from_lines(lines: list[str]) -> dict[str, int]:
    """{token: line number}; a repeated token keeps its last line (as transformers does)."""
    return {token: index for index, token in enumerate(lines)}


def write_vocab_lines(path: str, lines: list[str]) -> None:
    # the lines as read, repeats included: writing the dict instead would close the gaps a repeated
    # token leaves and shift every later id (transformers does that, with a warning)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(token + "\n" for token in lines))


def read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def resolve_files(name_or_path: str | os.PathLike, **hub_kwargs) -> dict[str, str | None]:
    """Local paths of the tokenizer files in a directory or a Hub repo; missing optional files map to None."""
    name_or_path = os.fspath(name_or_path)
    if os.path.isdir(name_or_path):
        files = {}
        for name in REQUIRED_FILES + OPTIONAL_FILES:
            path = os.path.join(name_or_path, name)
            files[name] = path if os.path.isfile(path) else None
        if files[SENTENCEPIECE_FILE] is None:
            raise FileNotFoundError(f"{name_or_path} has no {SENTENCEPIECE_FILE}; it is not an ErnieM tokenizer directory")
        return files
    if os.path.exists(name_or_path):
        raise ValueError(f"{name_or_path} is a file; pass the directory that holds {SENTENCEPIECE_FILE}")
    return _download(name_or_path, **hub_kwargs)


def _download(repo_id: str, **hub_kwargs) -> dict[str, str | None]:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError as exc:
        raise ImportError(
            f"{repo_id!r} is not a local directory, and loading from the Hugging Face Hub needs "
            "huggingface_hub: pip install 'ernie-m-fast[hub]'"
        ) from exc
    allowed = {"revision", "cache_dir", "token", "local_files_only", "force_download", "subfolder"}
    kwargs = {k: v for k, v in hub_kwargs.items() if k in allowed and v is not None}
    files: dict[str, str | None] = {}
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        try:
            files[name] = hf_hub_download(repo_id, name, **kwargs)
        except LocalEntryNotFoundError as exc:  # offline / local_files_only and not cached (a subclass of the next)
            if name not in REQUIRED_FILES:
                files[name] = None
                continue
            raise OSError(
                f"{name} of {repo_id!r} is not in the local cache and the Hugging Face Hub was not asked "
                "(HF_HUB_OFFLINE=1 or local_files_only=True). Pass a local directory, or go online once."
            ) from exc
        except EntryNotFoundError:
            if name in REQUIRED_FILES:
                raise FileNotFoundError(f"Hub repo {repo_id!r} has no {name}; it is not an ErnieM tokenizer") from None
            files[name] = None
        except Exception as exc:  # offline, unknown repo, network: say what failed and how to avoid it
            if name not in REQUIRED_FILES and files.get(SENTENCEPIECE_FILE):
                # the model file came through, so the repo is reachable: this optional file is absent
                files[name] = None
                continue
            raise OSError(
                f"could not get {name} of {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
                "Pass a local directory, or download the repo first (and unset HF_HUB_OFFLINE)."
            ) from exc
    return files

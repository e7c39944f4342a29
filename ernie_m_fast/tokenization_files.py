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
    """Local paths of the tokenizer files in a directory or a Hub repo; missing optional files map to None.

    Through the resolver the model uses (`ernie_m_fast.hub`), so both fail with the same messages.
    """
    from .hub import resolve_file

    files = {name: resolve_file(name_or_path, name, **hub_kwargs) for name in REQUIRED_FILES}
    files.update((name, resolve_file(name_or_path, name, optional=True, **hub_kwargs)) for name in OPTIONAL_FILES)
    return files

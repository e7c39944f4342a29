"""Finding files: a local directory, or a Hugging Face Hub repo id through huggingface_hub (optional).

huggingface_hub's own cache and `HF_HUB_OFFLINE=1` apply unchanged, as transformers users expect.
"""

from __future__ import annotations

import os


def is_local(path_or_repo_id) -> bool:
    return os.path.isdir(os.fspath(path_or_repo_id))


def resolve_file(path_or_repo_id, filename: str, *, optional: bool = False, revision=None, cache_dir=None,
                 token=None, local_files_only: bool = False):
    """Local path of `filename` in a directory or hub repo; None if `optional` and it does not exist."""
    path_or_repo_id = os.fspath(path_or_repo_id)
    if is_local(path_or_repo_id):
        path = os.path.join(path_or_repo_id, filename)
        if os.path.isfile(path):
            return path
        if optional:
            return None
        raise FileNotFoundError(f"{path_or_repo_id} has no {filename}")
    looks_like_path = path_or_repo_id.startswith(("/", ".", "~")) or path_or_repo_id.count("/") > 1
    if looks_like_path:
        raise FileNotFoundError(f"{path_or_repo_id} is neither a local directory nor a hub repo id")
    try:
        import huggingface_hub
        from huggingface_hub.utils import EntryNotFoundError
    except ImportError as exc:
        raise FileNotFoundError(
            f"{path_or_repo_id!r} is not a local directory, and loading by repo id needs huggingface_hub "
            "(pip install 'ernie-m-fast[hub]')"
        ) from exc
    try:
        return huggingface_hub.hf_hub_download(path_or_repo_id, filename, revision=revision, cache_dir=cache_dir,
                                               token=token, local_files_only=local_files_only)
    except EntryNotFoundError:
        if optional:
            return None
        raise FileNotFoundError(f"hub repo {path_or_repo_id} has no {filename}") from None
    except Exception as exc:  # offline, unknown repo, no network: say which and why
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or local_files_only
        hint = " (offline mode: the file is not in the local hub cache)" if offline else ""
        raise OSError(f"could not get {filename} from hub repo {path_or_repo_id!r}{hint}: {exc}") from exc

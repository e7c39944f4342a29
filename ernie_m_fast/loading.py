"""Checkpoint files: find, read and write ErnieM weights in the layouts transformers uses.

Reads `model.safetensors`, sharded `model.safetensors.index.json`, `pytorch_model.bin` (with
`weights_only=True`: a pickle that would run code is refused) and its sharded index. Writes
`model.safetensors` (optionally sharded with an index), which transformers 4.57 loads as is.
"""

from __future__ import annotations

import json
import logging
import os
import re

import torch

from .hub import raise_if_hub_unavailable, resolve_file

logger = logging.getLogger("ernie_m_fast")

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"


class CheckpointError(OSError):
    """A weights file that is missing, truncated, corrupt or unsafe; the message names the file."""


def find_weight_files(path_or_repo_id, **hub_kwargs) -> list[str]:
    """Local paths of the weight files, in the order transformers prefers: safetensors first."""
    for single, index in ((SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME), (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)):
        path = resolve_file(path_or_repo_id, single, optional=True, **hub_kwargs)
        if path is not None:
            return [path]
        index_path = resolve_file(path_or_repo_id, index, optional=True, **hub_kwargs)
        if index_path is not None:
            return [resolve_file(path_or_repo_id, shard, **hub_kwargs) for shard in _shards_of(index_path)]
    looked_for = f"{SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, {WEIGHTS_NAME} and {WEIGHTS_INDEX_NAME}"
    # offline or unreachable: the cache lacks them, which says nothing about the repo
    raise_if_hub_unavailable(path_or_repo_id, f"none of its weight files ({looked_for})", **hub_kwargs)
    raise CheckpointError(f"{path_or_repo_id} has no weights: looked for {looked_for}")


def _shards_of(index_path: str) -> list[str]:
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index_path} is not a valid checkpoint index: {exc}") from exc
    return sorted(set(weight_map.values()))


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """One weights file -> state dict on CPU (memory-mapped where the format allows)."""
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"cannot read {path}: the file is truncated or corrupt ({exc})") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle.UnpicklingError for unsafe globals, RuntimeError/EOFError for damage
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects other than tensors, which could run code "
                "when unpickled (loaded with weights_only=True)"
            ) from exc
        raise CheckpointError(f"cannot read {path}: the file is truncated or corrupt ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def load_checkpoint(path_or_repo_id, **hub_kwargs) -> dict[str, torch.Tensor]:
    files = find_weight_files(path_or_repo_id, **hub_kwargs)
    state: dict[str, torch.Tensor] = {}
    for path in _progress(files, "Loading checkpoint shards"):
        state.update(read_state_dict(path))
    return state


def _progress(items: list, desc: str):
    """A progress bar over sharded checkpoints (tqdm when installed, as transformers shows one)."""
    if len(items) < 2:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="shard")


def _parse_size(size) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?I?B)\s*", str(size).upper())
    if not match:
        raise ValueError(f"max_shard_size must be an int (bytes) or like '500MB', got {size!r}")
    unit = match.group(2)
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)


def save_state_dict(state: dict[str, torch.Tensor], save_directory: str, max_shard_size="5GB") -> list[str]:
    """Write safetensors shards (one file if it fits) plus an index when sharded; returns the file names."""
    from safetensors.torch import save_file

    limit = _parse_size(max_shard_size)
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and sizes[-1] + nbytes > limit:
            shards.append({})
            sizes.append(0)
        shards[-1][key] = tensor.detach().contiguous().cpu()
        sizes[-1] += nbytes
    for stale in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME):  # never leave a mix of layouts behind
        if os.path.exists(os.path.join(save_directory, stale)):
            os.remove(os.path.join(save_directory, stale))
    metadata = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], os.path.join(save_directory, SAFE_WEIGHTS_NAME), metadata=metadata)
        return [SAFE_WEIGHTS_NAME]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, os.path.join(save_directory, name), metadata=metadata)
        weight_map.update({key: name for key in shard})
    index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
    with open(os.path.join(save_directory, SAFE_WEIGHTS_INDEX_NAME), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2, sort_keys=True)
    return names + [SAFE_WEIGHTS_INDEX_NAME]

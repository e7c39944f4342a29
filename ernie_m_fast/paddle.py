"""PaddleNLP checkpoints, read without paddle: config, weights and tokenizer converted on load.

A PaddleNLP ErnieM / UIE-M directory holds `model_state.pdparams` (a pickle of numpy arrays keyed
by PaddleNLP's parameter names), `config.json` (PaddleNLP's fields, `architectures: ["UIEM"]`) or,
from PaddleNLP before 2.5, `model_config.json` (`init_class` / `init_args`), and the tokenizer files
`sentencepiece.bpe.model` + `vocab.txt` (the same names transformers uses, so the tokenizer needs
no conversion). What differs from transformers, and what this module converts:

- Paddle's `nn.Linear` stores its weight as `[in, out]`; torch's as `[out, in]`: every 2-D weight
  but the embedding tables is transposed.
- q/k/v sit one level higher: `self_attn.q_proj` -> transformers' `self_attn.self_attn.q_proj`
  (`self_attn.out_proj` keeps its name). The QA head is `classifier` in PaddleNLP, `qa_outputs` here.
- `UIEM` is `ErnieMForInformationExtraction`. PaddleNLP's UIEM returns sigmoid probabilities;
  ours returns logits (as transformers' does): apply `torch.sigmoid` to compare.
- PaddleNLP's ErnieM ignores `intermediate_size`: its feed-forward is always 4 x hidden_size.
- UIE-M from before PaddleNLP 2.4.5 calls its encoder `encoder.` (not `ernie_m.`); renamed as Taskflow does.
- bfloat16 weights (numpy has none) are stored as uint16 bit patterns; the config's dtype says so.

`model_state.pdparams` is read by a restricted unpickler that builds numpy arrays and plain
containers and refuses every other global, so a checkpoint cannot run code (paddle itself uses plain
`pickle.load`). Nothing here imports paddle.
"""

from __future__ import annotations

import codecs
import collections
import json
import logging
import os
import pickle
from typing import Any, Optional

import numpy as np
import torch

from .hub import is_local, resolve_file
from .loading import CheckpointError

logger = logging.getLogger("ernie_m_fast")

PADDLE_WEIGHTS_NAME = "model_state.pdparams"
PADDLE_CONFIG_NAME = "config.json"
PADDLE_LEGACY_CONFIG_NAME = "model_config.json"
# paddle.save adds this bookkeeping entry (structured name -> parameter name) to some state dicts
_STRUCTURED_NAMES_KEY = "StructuredToParameterName@@"

# PaddleNLP class name -> ours; the ErnieM heads share transformers' names except UIE-M
PADDLE_ARCHITECTURES = {
    "UIEM": "ErnieMForInformationExtraction",
    "ErnieMModel": "ErnieMModel",
    "ErnieMForSequenceClassification": "ErnieMForSequenceClassification",
    "ErnieMForTokenClassification": "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering": "ErnieMForQuestionAnswering",
    "ErnieMForMultipleChoice": "ErnieMForMultipleChoice",
}
# PaddleNLP-only config fields that mean nothing here (ErnieM has no token types)
_DROPPED_CONFIG_KEYS = ("paddlenlp_version", "type_vocab_size", "init_class", "init_args", "architectures")


# --- the restricted unpickler ---------------------------------------------------------------------
def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals a numpy-array pickle names, under numpy 1.x's and 2.x's module paths alike."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(package + ".multiarray", "_reconstruct")] = multiarray._reconstruct  # empty array of a class
        allowed[(package + ".multiarray", "scalar")] = multiarray.scalar  # a numpy scalar from dtype + bytes
        allowed[(package + ".numeric", "_frombuffer")] = numeric._frombuffer  # protocol-5 arrays
    return allowed


_ALLOWED_GLOBALS = {
    **_numpy_globals(),
    ("collections", "OrderedDict"): collections.OrderedDict,
    # paddle.save pickles a bare Tensor as `tuple((name, ndarray))`
    ("builtins", "tuple"): tuple,
    ("__builtin__", "tuple"): tuple,
    # protocol 2 (older paddle.save) writes bytes as _codecs.encode(str, "latin1"): a pure conversion
    ("_codecs", "encode"): codecs.encode,
}


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays, numbers, strings and containers; refuses any other class or function."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise _RefusedGlobal(f"persistent id {pid!r}")


def _as_array(key: str, value, path: str) -> np.ndarray:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        value = value[1]  # (tensor name, array), as paddle.save writes a Tensor outside a state dict
    if not isinstance(value, np.ndarray) or value.dtype.hasobject:
        raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a numeric array")
    return value


def read_pdparams(path: str) -> dict[str, np.ndarray]:
    """Read `model_state.pdparams` -> {PaddleNLP parameter name: numpy array}, safely (see module doc)."""
    try:
        with open(path, "rb") as f:
            state = _ArraysOnlyUnpickler(f).load()
    except _RefusedGlobal as exc:
        raise CheckpointError(
            f"refusing to load {path}: it asks the unpickler for {exc}, but a PaddleNLP weights file holds "
            "only numpy arrays and containers; anything else could run code when unpickled"
        ) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # EOFError, UnpicklingError, ValueError...: a damaged or truncated file
        raise CheckpointError(f"cannot read {path}: the file is truncated or corrupt ({type(exc).__name__}: {exc})") \
            from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict of arrays")
    state.pop(_STRUCTURED_NAMES_KEY, None)
    return {str(key): _as_array(key, value, path) for key, value in state.items()}


# --- weights and config conversion ----------------------------------------------------------------
def _is_linear_weight(key: str, array: np.ndarray) -> bool:
    return key.endswith(".weight") and array.ndim == 2 and "embeddings" not in key


def convert_state_dict(state: dict[str, np.ndarray], architecture: str = "ErnieMModel",
                       dtype: Optional[str] = None) -> dict[str, torch.Tensor]:
    """PaddleNLP names and layouts -> transformers' (see the module docstring).

    `architecture` is our class name (it decides the QA head's name); `dtype` the config's dtype, used
    to read bfloat16 weights, which numpy cannot hold and paddle saves as their uint16 bit patterns.
    """
    out = {}
    pre_245_uie = architecture == "ErnieMForInformationExtraction" and any(k.startswith("encoder.embeddings.")
                                                                         for k in state)
    for key, array in state.items():
        if pre_245_uie and key.startswith("encoder."):
            # PaddleNLP < 2.4.5 named UIE-M's encoder `encoder`; Taskflow renames it the same way
            key = "ernie_m." + key[len("encoder."):]  # encoder.encoder.layers -> ernie_m.encoder.layers
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if tensor.dtype == torch.uint16 and dtype == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        if _is_linear_weight(key, array):
            tensor = tensor.t().contiguous()  # Paddle [in, out] -> torch [out, in]
        for proj in ("q_proj", "k_proj", "v_proj"):
            key = key.replace(f"self_attn.{proj}.", f"self_attn.self_attn.{proj}.")
        if architecture == "ErnieMForQuestionAnswering" and key.startswith("classifier."):
            key = "qa_outputs." + key[len("classifier."):]
        out[key] = tensor
    return out


def flatten_legacy_config(config: dict) -> dict:
    """PaddleNLP < 2.5's model_config.json ({"init_args": [{...}], "init_class": "UIEM", ...}) -> flat
    fields, as PaddleNLP 2.8's `flatten_model_config` reads it: the outer level wins, the nested dicts
    fill in what it lacks, and `init_class` becomes `architectures`."""
    config = dict(config)
    for arg in config.pop("init_args", []) or []:
        if isinstance(arg, dict):
            for key, value in flatten_legacy_config(arg).items():
                config.setdefault(key, value)
    if "init_class" in config:
        config["architectures"] = [config.pop("init_class")]
    return config


def convert_config(paddle_config: dict):
    """A PaddleNLP config dict (config.json or legacy model_config.json) -> ErnieMConfig."""
    from .configuration import ErnieMConfig

    fields = flatten_legacy_config(paddle_config)
    architectures = fields.get("architectures") or ["ErnieMModel"]
    known = {**{name: name for name in PADDLE_ARCHITECTURES.values()}, **PADDLE_ARCHITECTURES}
    unknown = [name for name in architectures if name not in known]
    if unknown:
        raise ValueError(f"PaddleNLP architecture {unknown[0]!r} is not an ErnieM model this library knows "
                         f"(known: {sorted(PADDLE_ARCHITECTURES)})")
    ours = [known[name] for name in architectures]
    fields = {k: v for k, v in fields.items() if k not in _DROPPED_CONFIG_KEYS}
    if fields.get("model_type", "ernie_m") != "ernie_m":
        raise ValueError(f"the PaddleNLP config has model_type {fields['model_type']!r}, not 'ernie_m'")
    fields["model_type"] = "ernie_m"
    config = ErnieMConfig.from_dict(fields)
    declared = fields.get("intermediate_size")
    config.intermediate_size = 4 * config.hidden_size  # what PaddleNLP builds, whatever the file says
    if declared is not None and declared != config.intermediate_size:
        logger.info("PaddleNLP's ErnieM ignores intermediate_size=%s: its feed-forward is 4 x hidden_size = %s",
                    declared, config.intermediate_size)
    config.architectures = ours
    return config


# --- finding a PaddleNLP checkpoint ---------------------------------------------------------------
def is_paddle_config(config: dict) -> bool:
    """Whether a config dict was written by PaddleNLP (not transformers or ernie_m_fast)."""
    if "transformers_version" in config:
        return False
    return ("paddlenlp_version" in config or "init_class" in config or "init_args" in config
            or "UIEM" in (config.get("architectures") or []))


def _has_transformers_weights(path_or_repo_id, **hub_kwargs) -> bool:
    from .loading import find_weight_files

    try:
        find_weight_files(path_or_repo_id, **hub_kwargs)
        return True
    except (CheckpointError, OSError):
        return False


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


def find_paddle_config(path_or_repo_id, config_path: Optional[str], **hub_kwargs) -> Optional[dict]:
    """The PaddleNLP config dict of a checkpoint, or None when it is not a PaddleNLP checkpoint.

    `config_path`: the checkpoint's config.json, already resolved (None if it has none). A local
    directory is PaddleNLP's when it holds model_state.pdparams and no transformers weights, or when
    its config was written by PaddleNLP. Raises FileNotFoundError naming what is missing when the
    directory is PaddleNLP's but incomplete.
    """
    path_or_repo_id = os.fspath(path_or_repo_id)
    if config_path is not None:
        data = _read_json(config_path)
        if is_paddle_config(data):
            return data
    if is_local(path_or_repo_id):
        has_pdparams = os.path.isfile(os.path.join(path_or_repo_id, PADDLE_WEIGHTS_NAME))
        if not has_pdparams or _has_transformers_weights(path_or_repo_id):
            if config_path is None and os.path.isfile(os.path.join(path_or_repo_id, PADDLE_LEGACY_CONFIG_NAME)):
                raise FileNotFoundError(
                    f"{path_or_repo_id} has PaddleNLP's {PADDLE_LEGACY_CONFIG_NAME} but no {PADDLE_WEIGHTS_NAME} "
                    "(its weights)")
            return None
        if config_path is not None:
            return _read_json(config_path)  # a PaddleNLP directory whose config.json lacks the markers
    if config_path is not None:
        return None  # a hub repo whose config.json is transformers'
    legacy = resolve_file(path_or_repo_id, PADDLE_LEGACY_CONFIG_NAME, optional=True, **hub_kwargs)
    if legacy is not None:
        return _read_json(legacy)
    if is_local(path_or_repo_id):
        raise FileNotFoundError(
            f"{path_or_repo_id} holds PaddleNLP weights ({PADDLE_WEIGHTS_NAME}) but no config: neither "
            f"{PADDLE_CONFIG_NAME} nor PaddleNLP's legacy {PADDLE_LEGACY_CONFIG_NAME}")
    return None


def load_paddle_config(path_or_repo_id, config_path: Optional[str] = None, **hub_kwargs):
    """ErnieMConfig of a PaddleNLP checkpoint, or None when it is not one (see find_paddle_config).

    `config_path`: its config.json if the caller resolved it already (so a hub repo is asked once)."""
    if config_path is None:
        config_path = resolve_file(path_or_repo_id, PADDLE_CONFIG_NAME, optional=True, **hub_kwargs)
    data = find_paddle_config(path_or_repo_id, config_path, **hub_kwargs)
    if data is None:
        return None
    config = convert_config(data)
    config._name_or_path = os.fspath(path_or_repo_id)
    return config


def load_paddle_state_dict(path_or_repo_id, config=None, **hub_kwargs) -> Optional[dict[str, torch.Tensor]]:
    """The converted weights of a PaddleNLP checkpoint, or None when it has no model_state.pdparams."""
    path = resolve_file(path_or_repo_id, PADDLE_WEIGHTS_NAME, optional=True, **hub_kwargs)
    if path is None:
        return None
    if config is None:
        config = load_paddle_config(path_or_repo_id, **hub_kwargs)
    architecture = (config.architectures or ["ErnieMModel"])[0] if config is not None else "ErnieMModel"
    dtype = getattr(config, "dtype", None) if config is not None else None
    return convert_state_dict(read_pdparams(path), architecture, dtype)


# --- conversion to a transformers directory -------------------------------------------------------
def convert_checkpoint(src, dst, *, dtype=None) -> str:
    """Write a transformers-format directory (model.safetensors + config.json + tokenizer files) for
    the checkpoint at `src` (PaddleNLP's, or any other layout from_pretrained reads); transformers
    4.57 and ernie_m_fast both load the result."""
    from .modeling import ErnieMFast
    from .tokenization import ErnieMTokenizer

    model = ErnieMFast.from_pretrained(src, dtype=dtype)
    model.save_pretrained(dst)
    try:
        tokenizer = ErnieMTokenizer.from_pretrained(src)
    except FileNotFoundError:
        logger.warning("%s has no tokenizer files (sentencepiece.bpe.model); %s holds the model only", src, dst)
    else:
        tokenizer.save_pretrained(dst)
    return os.fspath(dst)

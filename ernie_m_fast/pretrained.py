"""ErnieMPreTrainedModel: weight init, backend choice, from_pretrained and save_pretrained.

from_pretrained builds the model on the meta device and assigns the checkpoint's tensors in place
(no random init of weights that are about to be overwritten, no second copy of the checkpoint);
only weights the checkpoint lacks are initialised, and transformers' warnings name them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from typing import Optional

import torch
from torch import nn

from . import ops
from .activations import get_activation
from .configuration import ErnieMConfig
from .hub import HUB_KWARGS
from .loading import load_checkpoint, save_state_dict

logger = logging.getLogger("ernie_m_fast")

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _as_dtype(dtype) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.replace("torch.", "")
        if name in _DTYPES:
            return _DTYPES[name]
    raise ValueError(f"dtype must be torch.float32/float16/bfloat16, their names, or 'auto'; got {dtype!r}")


def _init_parameter(module: nn.Module, name: str, tensor: torch.Tensor, std: float) -> None:
    """transformers' ErnieM init, one parameter at a time (so a loaded sibling is never touched)."""
    with torch.no_grad():
        if isinstance(module, nn.LayerNorm):
            tensor.fill_(1.0 if name == "weight" else 0.0)
        elif name == "bias":
            tensor.zero_()
        else:
            tensor.normal_(mean=0.0, std=std)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                tensor[module.padding_idx].zero_()


_SKIP_INIT = False


@contextlib.contextmanager
def _skip_init():
    """Build modules without initialising their parameters (from_pretrained, on the meta device:
    every value is replaced by the checkpoint's or initialised afterwards). Initialising meta tensors
    is not free: torch.nn.init on them runs torch._refs, which imports torch._dynamo and sympy (~145 MB
    of resident memory and ~1 s for a load that needs none of it)."""
    global _SKIP_INIT
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_") and callable(getattr(nn.init, n))]
    saved = {n: getattr(nn.init, n) for n in names}
    previous = _SKIP_INIT
    try:
        _SKIP_INIT = True
        for n in names:
            setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        _SKIP_INIT = previous
        for n, fn in saved.items():
            setattr(nn.init, n, fn)


class ErnieMPreTrainedModel(nn.Module):
    config_class = ErnieMConfig
    base_model_prefix = "ernie_m"

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        if not isinstance(config, ErnieMConfig):
            raise TypeError(f"config must be an ernie_m_fast.ErnieMConfig, got {type(config).__name__}")
        config.validate()
        get_activation(config.hidden_act)  # fail at construction, not at the first forward
        self.config = config
        self._backend = "auto"

    # --- weights ---------------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        if _SKIP_INIT:
            return
        for name, param in module.named_parameters(recurse=False):
            _init_parameter(module, name, param.data, self.config.initializer_range)

    def post_init(self) -> None:
        self.apply(self._init_weights)

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- backend -----------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, name: str) -> None:
        if name != "auto" and name not in ops.backends.BACKEND_NAMES:
            raise ValueError(f"unknown backend {name!r}; choose 'auto' or one of {ops.backends.BACKEND_NAMES}")
        for module in self.modules():
            if isinstance(module, ErnieMPreTrainedModel):
                module._backend = name

    def set_backend(self, name: str):
        """Choose the kernels: "auto" (fastest available for the inputs' device) or a backend name."""
        self.backend = name
        return self

    def needs_autograd(self, inputs_embeds=None) -> bool:
        return torch.is_grad_enabled() and (
            any(p.requires_grad for p in self.parameters())
            or (inputs_embeds is not None and inputs_embeds.requires_grad)
        )

    def resolve_backend(self, device) -> str:
        """The backend this model's forwards take on `device`, inputs aside (ValueError if an explicit
        one cannot run there). The fused kernels run whether or not autograd is recording (they carry
        autograd formulas); per op, `auto` moves to the next backend when one cannot take the inputs."""
        return ops.resolve_backend(self._backend, device)

    # --- saving and loading ------------------------------------------------------------------------
    def save_pretrained(self, save_directory, max_shard_size="5GB", **unused) -> None:
        """config.json + model.safetensors (sharded with an index above max_shard_size), as transformers writes them."""
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file; save_pretrained needs a directory")
        if getattr(self, "quantization", None):
            raise ValueError(f"this model was quantized ({self.quantization}) at load time and its float weights are "
                             "gone; save the model loaded without quantize= instead")
        os.makedirs(save_directory, exist_ok=True)
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.dtype = str(self.dtype).replace("torch.", "")
        config.save_pretrained(save_directory)
        save_state_dict(self.state_dict(), save_directory, max_shard_size=max_shard_size)

    @classmethod
    def from_pretrained(cls, path_or_repo_id, *, config: Optional[ErnieMConfig] = None, dtype=None,
                        torch_dtype=None, device=None, backend: str = "auto", ignore_mismatched_sizes: bool = False,
                        quantize: Optional[str] = None, prepack: bool = False, **kwargs):
        """Load a checkpoint directory or hub repo id.

        dtype (alias torch_dtype): torch.float32 (default), float16, bfloat16, or "auto" for the
        config's / checkpoint's dtype. device: where the weights go. backend: see `set_backend`.
        ignore_mismatched_sizes: initialise weights whose shape differs from the checkpoint's (a
        head loaded with another num_labels) instead of raising, with a warning naming them.
        quantize: None, or "int8" for int8 GEMMs on CPU (torch's dynamic quantized linear; fp32
        activations in and out; encoder and pooler only; the model cannot be saved afterwards).
        prepack: CPU float32 serving: the encoder's and pooler's weights are reordered once for
        oneDNN, so no call re-packs them (fastest at small batches); q/k/v become one weight.
        Both give an inference-only model (no parameter requires grad); prepack keeps save_pretrained.
        Remaining keyword arguments override config fields, as in transformers.
        """
        if quantize is not None:
            from .linear import QUANTIZE_SCHEMES

            if quantize not in QUANTIZE_SCHEMES:
                raise ValueError(f"quantize must be one of {QUANTIZE_SCHEMES} or None, got {quantize!r}")
            if prepack:
                raise ValueError("pass quantize= or prepack=True, not both: a quantized model is packed already")
        if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
            raise ValueError("pass dtype or torch_dtype (an alias), not both")
        dtype = dtype if dtype is not None else torch_dtype
        hub_kwargs = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        if config is None:
            config = ErnieMConfig.from_pretrained(path_or_repo_id, **hub_kwargs)
        else:
            config = copy.deepcopy(config)
        for key, value in kwargs.items():
            if not hasattr(config, key):
                raise TypeError(f"from_pretrained got an unexpected keyword argument {key!r}")
            setattr(config, key, value)

        state = load_checkpoint(path_or_repo_id, **hub_kwargs)
        if dtype == "auto":
            dtype = _as_dtype(config.dtype) if config.dtype else next(
                (t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
        dtype = _as_dtype(dtype) or torch.float32
        device = torch.device(device) if device is not None else torch.device("cpu")

        with torch.device("meta"), _skip_init():
            model = cls(config)
        state = _match_prefix(state, model)
        expected = model.state_dict()
        loaded, missing, mismatched = {}, [], []
        for key, meta in expected.items():
            if key not in state:
                missing.append(key)
                continue
            tensor = state[key]
            if tuple(tensor.shape) != tuple(meta.shape):
                if not ignore_mismatched_sizes:
                    raise ValueError(
                        f"size mismatch for {key}: the checkpoint at {path_or_repo_id} has shape "
                        f"{tuple(tensor.shape)}, the model built from its config needs {tuple(meta.shape)} "
                        "(pass ignore_mismatched_sizes=True to initialise it anew)"
                    )
                mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)}, model {tuple(meta.shape)}")
                continue
            loaded[key] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        for key in expected.keys() - loaded.keys():
            module_name, _, param_name = key.rpartition(".")
            module = model.get_submodule(module_name)
            tensor = torch.empty(expected[key].shape, dtype=dtype, device=device)
            _init_parameter(module, param_name, tensor, config.initializer_range)
            loaded[key] = tensor
        model.load_state_dict(loaded, strict=True, assign=True)
        unexpected = sorted(set(state) - set(expected))
        if missing:
            logger.warning(
                "Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                "initialized: %s\nYou should probably TRAIN this model on a down-stream task to be able to use "
                "it for predictions and inference.", cls.__name__, path_or_repo_id, missing)
        if mismatched:
            logger.warning("Some weights of %s were not initialized from the model checkpoint at %s because their "
                           "shapes differ, and are newly initialized: %s", cls.__name__, path_or_repo_id, mismatched)
        if unexpected:
            logger.warning("Some weights of the model checkpoint at %s were not used when initializing %s: %s",
                           path_or_repo_id, cls.__name__, unexpected)
        model.backend = backend
        if quantize is not None or prepack:
            from .linear import pack_linears_, quantize_linears_

            del state, loaded  # the model holds the only reference now: each packed weight frees its original

            if quantize is not None:
                quantize_linears_(model, quantize)
            else:
                pack_linears_(model, "mkldnn")
            model.requires_grad_(False)  # packed weights have no gradients: say so, so no loss pretends to train
        return model.eval()


def _match_prefix(state: dict, model: ErnieMPreTrainedModel) -> dict:
    """Move between a base checkpoint (no "ernie_m." prefix) and a head model, either way."""
    prefix = model.base_model_prefix + "."
    expected = model.state_dict().keys()
    has_prefix = any(k.startswith(prefix) for k in state)
    wants_prefix = any(k.startswith(prefix) for k in expected)
    if wants_prefix and not has_prefix:
        return {prefix + k: v for k, v in state.items()}
    if has_prefix and not wants_prefix:
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    return state

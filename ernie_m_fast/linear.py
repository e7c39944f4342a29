"""Linear layers whose weight is packed once, at load time, for a CPU GEMM library.

`Int8Linear`: weights quantized per output channel (symmetric int8) and packed once for torch's
dynamic quantized linear (`torch.ops.quantized.linear_dynamic`: fbgemm / oneDNN underneath, as
torch's own `quantize_dynamic` uses); activations are quantized per call from their own range.
Only the packed int8 weight is kept: the fp32 weight is dropped, so nothing is stored twice.

Each packed layer answers `forward(x)` (x W^T + b) and `matmul(x)` (x W^T, for a caller that fuses
the bias into the next op, as the FFN's bias + GELU does). `linear_matmul` does the same for a plain
`nn.Linear`, so the model calls one function whichever it holds.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

QUANTIZE_SCHEMES = ("int8",)


def activation_reduce_range(cpu_flags: set[str] | frozenset[str] | None = None) -> bool:
    """Whether dynamic int8 activations must use 7 bits (0..127) instead of 8 on this CPU.

    Without VNNI, fbgemm's u8 x s8 products are summed in pairs into int16 (vpmaddubsw), which
    saturates for 8-bit activations (2 * 255 * 127 > 32767) and silently corrupts outputs; torch's own
    x86 quantization configs reduce the range for that reason. With VNNI (avx512_vnni / avx_vnni) the
    sums are int32 and the full range halves the activations' rounding error. Unknown: reduce.
    """
    if cpu_flags is None:
        cpu_flags = _cpu_flags()
    return not ({"avx512_vnni", "avx_vnni"} & cpu_flags)


@functools.lru_cache(maxsize=None)  # asked once per packed layer; the CPU does not change
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def linear_matmul(linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x W^T without the bias, for an `nn.Linear` or a packed layer."""
    if isinstance(linear, PackedLinear):
        return linear.matmul(x)
    return F.linear(x, linear.weight)


def linear_gelu(linear: nn.Module, x: torch.Tensor, approximate: str) -> torch.Tensor | None:
    """GELU(x W^T + b) with the bias and GELU in the GEMM's epilogue, where the layer's GEMM library
    has one (oneDNN, for a pre-packed layer: no separate pass over the (rows, intermediate) output);
    None where it has not, and the caller runs the GEMM and then its fused bias + GELU."""
    if isinstance(linear, MkldnnLinear):
        return linear.gelu(x, approximate)
    return None


class PackedLinear(nn.Module):
    """Common to the packed layers: a bias kept as a plain parameter, (in, out) for repr."""

    def __init__(self, in_features: int, out_features: int, bias: torch.Tensor | None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.matmul(x)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# The quantized engine the int8 weights are packed for. A packed weight carries its engine, so the
# calls run on it whatever `torch.backends.quantized.engine` says later; only the packing switches the
# global setting, briefly. oneDNN's dynamic int8 linear measured 1.6x fbgemm's (torch's x86 default)
# on a base FFN GEMM (1024 x 768 x 3072, one thread, same results to the bit).
INT8_ENGINE = "onednn"


@contextlib.contextmanager
def _quantized_engine(name: str):
    previous = torch.backends.quantized.engine
    if name not in torch.backends.quantized.supported_engines or name == previous:
        yield
        return
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


class Int8Linear(PackedLinear):
    """Dynamic int8 linear: per-channel symmetric int8 weights packed once, fp32 in and out.

    gemm_bias=True packs the bias into the GEMM (its output stage adds it: no separate pass), for a
    layer only ever called whole (`forward`); `matmul` (x W^T without the bias) is then unavailable.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, gemm_bias: bool = False):
        if weight.dim() != 2:
            raise ValueError(f"Int8Linear needs a 2-D weight, got shape {tuple(weight.shape)}")
        if weight.device.type != "cpu":
            raise ValueError(f"int8 quantization runs on CPU only; the weight is on {weight.device}")
        out_features, in_features = weight.shape
        super().__init__(in_features, out_features, None if bias is None else bias.float())
        w = weight.detach().float()
        # symmetric per-output-channel scales; an all-zero row gets scale 1 (any scale represents 0)
        scales = (w.abs().amax(dim=1) / 127.0).double()
        scales = torch.where(scales > 0, scales, torch.ones_like(scales))
        zero_points = torch.zeros(out_features, dtype=torch.long)
        with warnings.catch_warnings():  # torch deprecates quantized *tensors*; the packed op is what we use
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
        self.gemm_bias = gemm_bias and self.bias is not None
        with _quantized_engine(INT8_ENGINE):
            self._packed = torch.ops.quantized.linear_prepack(qweight, self.bias if self.gemm_bias else None)
        self._reduce_range = activation_reduce_range()

    def _gemm(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"an int8-quantized model takes float32 activations, got {x.dtype}")
        shape = x.shape
        out = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).contiguous(), self._packed, self._reduce_range)
        return out.view(*shape[:-1], self.out_features)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        if self.gemm_bias:
            raise ValueError("this Int8Linear's bias is packed into its GEMM: call it whole, not .matmul()")
        return self._gemm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._gemm(x) if self.gemm_bias else super().forward(x)

    def dequantized_weight(self) -> torch.Tensor:
        """The fp32 weight the int8 one stands for (for tests and inspection)."""
        qweight, _ = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.dequantize()


class MkldnnLinear(PackedLinear):
    """fp32 linear on oneDNN with the weight reordered once into its blocked layout (what inductor's
    freezing does at compile time), so no call re-packs it; the reordered weight is the only copy."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, rows_hint: int = 128, *,
                 gemm_bias: bool = True):
        # gemm_bias: accepted for symmetry with Int8Linear; oneDNN takes the bias per call, so `forward`
        # always adds it in the GEMM and `matmul` can still leave it out.
        if weight.dim() != 2 or weight.dtype != torch.float32 or weight.device.type != "cpu":
            raise ValueError(f"MkldnnLinear needs a 2-D float32 CPU weight, got {tuple(weight.shape)} "
                             f"{weight.dtype} on {weight.device}")
        out_features, in_features = weight.shape
        super().__init__(in_features, out_features, bias)
        self._packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), rows_hint)

    def _pointwise(self, x: torch.Tensor, bias: torch.Tensor | None, attr: str, algorithm: str) -> torch.Tensor:
        """oneDNN's linear on x's rows with an optional bias and eltwise epilogue `attr`, shaped back like x."""
        shape = x.shape
        out = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, shape[-1]), self._packed, bias, attr, [], algorithm)
        return out.view(*shape[:-1], self.out_features)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        return self._pointwise(x, None, "none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pointwise(x, self.bias, "none", "")

    def gelu(self, x: torch.Tensor, approximate: str) -> torch.Tensor:
        """GELU(x W^T + b), exact erf form ("none") or tanh approximation ("tanh"), bias and GELU in
        oneDNN's GEMM epilogue (its eltwise GELU: within ~2e-6 of fp64 at the base shape, as the
        separate bias_gelu kernel)."""
        return self._pointwise(x, self.bias, "gelu", approximate)

    def dense_weight(self) -> torch.Tensor:
        return self._packed.to_dense()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # state dicts hold nn.Linear's dense `weight`, so a packed model saves like an unpacked one
        destination[prefix + "weight"] = self.dense_weight()
        super()._save_to_state_dict(destination, prefix, keep_vars)


PACKINGS = {"int8": Int8Linear, "mkldnn": MkldnnLinear}


def pack_linears_(model: nn.Module, kind: str, *, pooler: bool = True) -> nn.Module:
    """Replace the encoder's (and, with `pooler`, the pooler's) nn.Linear layers of `model` by packed
    `kind` layers, in place.

    Each self-attention's q/k/v become one packed QKV layer (`pack_qkv`: the model owns that layout).
    Task heads stay as they are: they are tiny and their outputs are what users read.
    """
    if kind not in PACKINGS:
        raise ValueError(f"unknown packing {kind!r}; choose from {sorted(PACKINGS)}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError(f"{kind} linears run on CPU only: load the model with device='cpu'")
    if any(p.dtype != torch.float32 for p in model.parameters() if p.is_floating_point()):
        raise ValueError(f"{kind} linears need a float32 model: load it with dtype=torch.float32")
    make = PACKINGS[kind]
    base = model.base_model
    with torch.no_grad():
        for layer in base.encoder.layers:
            # q/k/v are only ever called whole: their bias can go into the GEMM; the other layers'
            # biases are added by the fused op that follows them (bias + GELU, bias + residual + LayerNorm)
            layer.self_attn.self_attn.pack_qkv(functools.partial(make, gemm_bias=True))
            layer.self_attn.out_proj = make(layer.self_attn.out_proj.weight, layer.self_attn.out_proj.bias)
            layer.linear1 = make(layer.linear1.weight, layer.linear1.bias)
            layer.linear2 = make(layer.linear2.weight, layer.linear2.bias)
        if pooler and base.pooler is not None:
            base.pooler.dense = make(base.pooler.dense.weight, base.pooler.dense.bias)
    return model


def quantize_linears_(model: nn.Module, scheme: str) -> nn.Module:
    """`pack_linears_` with int8 weights; records the scheme on the model (which can then not be saved).

    The pooler stays float32: it runs on one row per sequence, so int8 buys it no time, and its output
    feeds the classification heads directly, so its rounding would move their logits the most.
    """
    if scheme not in QUANTIZE_SCHEMES:
        raise ValueError(f"quantize must be one of {QUANTIZE_SCHEMES} (or None), got {scheme!r}")
    pack_linears_(model, scheme, pooler=False)
    model.quantization = scheme
    return model

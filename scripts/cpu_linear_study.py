"""Which CPU GEMM path is fastest for ErnieM's linears at the row counts a serving batch has?

    python scripts/cpu_linear_study.py [--rows 16 128 1024] [--rounds 10] [--threads 2]

One encoder layer's four linears (QKV 768->2304, out 768->768, FFN up 768->3072 with GELU, FFN down
3072->768), timed in interleaved rounds with the benchmarks' shared timer, per path:
  F.linear        torch's default (MKL sgemm; B re-packed inside every call)
  mkldnn_packed   oneDNN with the weight reordered once (torch.ops.mkldnn._linear_pointwise), GELU as
                  the GEMM's post-op
  inductor_frozen torch.compile(mode="max-autotune-no-cudagraphs" off; freezing=True): inductor packs the
                  weights as constants at compile time
  int8_dynamic    torch.ops.quantized.linear_dynamic on per-channel int8 weights packed once
Prints ms per layer, GFLOP/s and max |error| against F.linear.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from ernie_m_fast.bench.hardware import linear_shapes
from ernie_m_fast.bench.report import format_table
from ernie_m_fast.bench.timing import measure
from ernie_m_fast.linear import Int8Linear


def layer_paths(rows: int, hidden=768, inter=3072, compile_frozen=True):
    g = torch.Generator().manual_seed(0)
    shapes = linear_shapes(hidden, inter)
    weights = [(torch.randn(n, k, generator=g) * 0.02, torch.randn(n, generator=g) * 0.02) for k, n in shapes]
    x = torch.randn(rows, hidden, generator=g)
    h = torch.randn(rows, inter, generator=g)

    def eager():
        outs = [F.linear(x, *weights[0]), F.linear(x, *weights[1]), F.gelu(F.linear(x, *weights[2])),
                F.linear(h, *weights[3])]
        return outs

    packed = [torch.ops.mkldnn._reorder_linear_weight(w, rows) for w, _ in weights]

    def mkldnn():
        lp = torch.ops.mkldnn._linear_pointwise
        return [lp(x, packed[0], weights[0][1], "none", [], ""), lp(x, packed[1], weights[1][1], "none", [], ""),
                lp(x, packed[2], weights[2][1], "gelu", [], "none"), lp(h, packed[3], weights[3][1], "none", [], "")]

    q = [Int8Linear(w, b) for w, b in weights]

    def int8():
        return [q[0](x), q[1](x), F.gelu(q[2](x)), q[3](h)]

    paths = {"F.linear": eager, "mkldnn_packed": mkldnn, "int8_dynamic": int8}
    if compile_frozen:
        import torch._inductor.config as inductor_config

        class Layer(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lins = torch.nn.ModuleList([torch.nn.Linear(k, n) for k, n in shapes])
                for lin, (w, b) in zip(self.lins, weights):
                    lin.weight.data, lin.bias.data = w, b

            def forward(self, x, h):
                return [self.lins[0](x), self.lins[1](x), F.gelu(self.lins[2](x)), self.lins[3](h)]

        inductor_config.freezing = True
        module = Layer().eval()
        compiled = torch.compile(module)
        paths["inductor_frozen"] = lambda: compiled(x, h)
    flops = sum(2.0 * rows * k * n for k, n in shapes)
    return paths, flops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[16, 128, 1024])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    table = []
    for rows in args.rows:
        paths, flops = layer_paths(rows, compile_frozen=not args.no_compile)
        with torch.no_grad():
            reference = paths["F.linear"]()
            errors = {n: max((a - b).abs().max().item() for a, b in zip(fn(), reference)) for n, fn in paths.items()}
            timings = measure(paths, rounds=args.rounds, warmup=2, desc=f"{rows} rows")
        base = timings["F.linear"].p50
        for name, t in timings.items():
            table.append({"rows": rows, "path": name, "p50_ms": t.p50 * 1e3, "warmup_ms": t.warmup_s * 1e3,
                          "gflops": flops / t.p50 / 1e9, "vs_F.linear": base / t.p50, "max_err": errors[name]})
    print(format_table(table, [("rows", "rows"), ("path", "path"), ("p50_ms", "p50 ms"), ("warmup_ms", "warm-up ms"),
                               ("gflops", "GFLOP/s"), ("vs_F.linear", "vs F.linear"), ("max_err", "max |err|")]))


if __name__ == "__main__":
    main()

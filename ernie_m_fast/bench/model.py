"""The whole model against what users run today: ours (padding-free, fused kernels) vs transformers
(padded) and ONNX Runtime (transformers' model exported; padded), same weights, same inputs, one run.

    ernie-m-fast bench model --size base --mix batch1-16 --compare transformers,onnxruntime --threads 2

Weights are a random init of the size's real shapes, saved once and loaded by every engine (or
`--checkpoint DIR`). Each round times every engine once (order rotating) next to GEMM probes: the
four GEMMs of one encoder layer on 1024 rows through each GEMM path available (torch.mm and, on a CPU,
oneDNN with pre-packed weights); the fastest path's throughput is the GEMM roofline quoted as
`gemm_peak_gflops` (measured under the same load as the models; every path's in `gemm_probes`). Reported per
engine: latency p50/p99, warm-up apart, tokens/s (real tokens), achieved GFLOP/s (the FLOPs of the
real tokens; padding is nobody's useful work) and its fraction of the GEMM peak, the extra peak RSS
of one forward, max |deviation| from the first baseline at attended positions, and the speed-up of
ours over each. On a CPU in float32, ours is loaded with `prepack=True` (weights reordered once for oneDNN;
`--no-prepack` turns it off; `--compare ours-eager` adds the default load beside it).
`--quantize int8` adds `ours-int8` and its quality against our fp32 on the
benchmark's batch plus 64 more sequences: min cosine similarity of last hidden states over attended
tokens and argmax agreement of a sequence-classification head's logits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Optional

import torch

from . import engines as engines_mod
from .hardware import gemm_probes, load_average, peak_rss_bytes, reset_peak_rss, rss_bytes
from .report import add_output_arguments, bar_chart, emit, format_table, progress
from .timing import measure

PROBE = "gemm_probe:"  # timing keys of the GEMM probes, beside the engines'

# Real shapes of the published checkpoints (susnato/ernie-m-base_pytorch, -large_pytorch); `small` is
# the configuration older README numbers were taken on; `tiny` is for tests.
SIZES = {
    "base": dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    "large": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096),
    "small": dict(vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024),
    "tiny": dict(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64),
}
MIXES = {
    "batch1-16": "1 sequence of 16 tokens",
    "batch1-128": "1 sequence of 128 tokens",
    "uniform8x128": "8 sequences of 128 tokens",
    "uniform32x128": "32 sequences of 128 tokens",
    "varlen16": "16 sequences of 16-256 tokens (seeded), padded to the longest",
}
QUALITY_SEQUENCES = 64
NUM_LABELS = 3


def mix_lengths(mix: str, seed: int = 0) -> list[int]:
    if mix == "varlen16":
        g = torch.Generator().manual_seed(seed)
        return torch.randint(16, 257, (16,), generator=g).tolist()
    if mix.startswith("batch1-"):
        return [int(mix.split("-")[1])]
    if mix.startswith("uniform"):
        batch, length = mix[len("uniform"):].split("x")
        return [int(length)] * int(batch)
    raise ValueError(f"unknown mix {mix!r}; choose from {', '.join(MIXES)}")


def make_batch(lengths: list[int], vocab_size: int, pad_token_id: int = 1, seed: int = 0):
    """Right-padded random ids (never the pad id) and their attention mask."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(5, vocab_size, (len(lengths), width), generator=g)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, pad_token_id), mask


def model_flops(config, lengths: list[int]) -> float:
    """Multiply-adds x 2 of the encoder and pooler on the real tokens (no padding)."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * (4 * h * h + 2 * h * inter)  # QKV + out projection + FFN
    total = 0.0
    for n in lengths:
        total += layers * (n * per_token + 4 * n * n * h)  # + scores and context
        total += 2 * h * h  # pooler
    return total


def save_random_checkpoint(size: str, directory: str, dtype=torch.float32, seed: int = 0) -> None:
    """A sequence-classification model of the size's real shapes, randomly initialised (seeded)."""
    from ..configuration import ErnieMConfig
    from ..modeling import ErnieMForSequenceClassification

    config = ErnieMConfig(**SIZES[size], max_position_embeddings=514, num_labels=NUM_LABELS)
    torch.manual_seed(seed)
    model = ErnieMForSequenceClassification(config).to(dtype)
    model.save_pretrained(directory)


LOAD_MODES = {"default": {}, "prepack": {"prepack": True}, "int8": {"quantize": "int8"}}


def loaded_memory(checkpoint: str, mode: str = "default") -> dict:
    """Resident memory of a model loaded in `mode` (LOAD_MODES), measured in a fresh process."""
    cmd = [sys.executable, "-m", "ernie_m_fast.bench.model", "--_memory-child", checkpoint, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    weights = sum(os.path.getsize(os.path.join(checkpoint, f)) for f in os.listdir(checkpoint)
                  if f.endswith(".safetensors"))
    result["safetensors_mb"] = weights / 2**20
    budget = 1.1 * result["safetensors_mb"] + result["baseline_rss_mb"]
    result["rss_budget_mb"] = budget  # the target: 1.1 x the file plus the runtime's own baseline
    result["within_budget"] = result["peak_rss_mb"] <= budget
    return result


def _memory_child(checkpoint: str, mode: str) -> None:
    """Load, fault every weight page in (safetensors maps the file: untouched pages are not resident)
    and run one forward (lazily built state such as a fused-QKV cache counts), then read the peak."""
    import ernie_m_fast as emf

    # the runtime's baseline: everything a first forward imports and initialises, on a tiny model
    tiny = emf.ErnieMModel(emf.ErnieMConfig(**SIZES["tiny"], max_position_embeddings=514)).eval()
    with torch.inference_mode():
        tiny(input_ids=torch.tensor([[5, 6, 7]]))
    del tiny
    baseline = rss_bytes()
    reset_peak_rss()
    model = emf.ErnieMModel.from_pretrained(checkpoint, **LOAD_MODES[mode])
    loaded = rss_bytes()
    with torch.inference_mode():
        for p in model.parameters():
            p.sum()
        ids, mask = make_batch([16], model.config.vocab_size, model.config.pad_token_id)
        model(input_ids=ids, attention_mask=mask)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"baseline_rss_mb": baseline / 2**20, "loaded_rss_mb": loaded / 2**20,
                      "after_forward_rss_mb": rss_bytes() / 2**20, "peak_rss_mb": peak_rss_bytes() / 2**20,
                      "parameters_mb": params / 2**20}))


def _engine_list(compare: str) -> list[str]:
    names = [n.strip() for n in compare.split(",") if n.strip()]
    unknown = [n for n in names if n not in engines_mod.ENGINES or n == "ours"]
    if unknown:
        raise ValueError("--compare takes a comma-separated list of transformers, onnxruntime, ours-eager; "
                         f"got {unknown}")
    return names


def _quality(checkpoint: str, lengths: list[int], vocab_size: int, device, quantize: str) -> dict:
    """Our fp32 vs our quantized model on the benchmark batch plus QUALITY_SEQUENCES more."""
    from ..modeling import ErnieMForSequenceClassification

    extra = torch.randint(16, 129, (QUALITY_SEQUENCES,), generator=torch.Generator().manual_seed(1)).tolist()
    batches = [make_batch(lengths, vocab_size), make_batch(extra, vocab_size, seed=1)]
    models = {q: ErnieMForSequenceClassification.from_pretrained(checkpoint, device=device, **(
        {"quantize": q} if q else {})) for q in (None, quantize)}
    cosines, agree, total, logit_dev, margins = [], 0, 0, 0.0, []
    with torch.inference_mode():
        for ids, mask in batches:
            ids, mask = ids.to(device), mask.to(device)
            out = {q: m(input_ids=ids, attention_mask=mask, output_hidden_states=True) for q, m in models.items()}
            ref, test = out[None], out[quantize]
            keep = mask.bool()
            cos = torch.nn.functional.cosine_similarity(ref.hidden_states[-1][keep].float(),
                                                        test.hidden_states[-1][keep].float(), dim=-1)
            cosines.append(cos.min().item())
            agree += int((ref.logits.argmax(-1) == test.logits.argmax(-1)).sum())
            total += ids.shape[0]
            logit_dev = max(logit_dev, (ref.logits - test.logits).abs().max().item())
            top2 = ref.logits.float().topk(2, dim=-1).values
            margins.append(top2[:, 0] - top2[:, 1])
    # argmax can only flip where fp32's top-2 margin is below the quantized logits' deviation: on
    # random weights the classifier's logits barely vary, so that share says what agreement can mean
    margins = torch.cat(margins)
    return {"min_cosine_last_hidden": min(cosines), "argmax_agreement": agree / total, "sequences": total,
            "max_logit_deviation": logit_dev, "share_of_fp32_margins_below_twice_it": (margins < 2 * logit_dev).float().mean().item()}


def run(size: str = "base", mix: str = "batch1-16", compare: str = "transformers,onnxruntime", *,
        quantize: Optional[str] = None, threads: Optional[int] = None, checkpoint: Optional[str] = None,
        device: Optional[str] = None, dtype=torch.float32, rounds: int = 20, warmup: int = 2,
        memory: bool = True, cuda_graphs: bool = False, prepack: Optional[bool] = None, seed: int = 0) -> dict:
    from ..configuration import ErnieMConfig

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    if prepack is None:  # our CPU serving configuration: weights packed once for oneDNN
        prepack = device.type == "cpu" and dtype == torch.float32
    baselines = _engine_list(compare)
    lengths = mix_lengths(mix, seed)
    with engines_mod.scratch_dir() as workdir:
        if checkpoint is None:
            checkpoint = os.path.join(workdir, "checkpoint")
            save_random_checkpoint(size, checkpoint, seed=seed)
        config = ErnieMConfig.from_pretrained(checkpoint)
        ids, mask = make_batch(lengths, config.vocab_size, config.pad_token_id, seed)
        built, failed = {}, {}
        for name in progress(["ours"] + baselines, desc="loading engines"):
            start = time.perf_counter()
            try:  # a baseline that cannot run this configuration is reported, not fatal
                engine = engines_mod.build(name, checkpoint, ids, mask, dtype=dtype, device=device, threads=threads,
                                           workdir=workdir, cuda_graphs=cuda_graphs, prepack=prepack)
                engine.run()
            except (RuntimeError, ValueError) as exc:
                if name == "ours":
                    raise
                failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            engine.load_s = time.perf_counter() - start
            built[name] = engine
        baselines = [b for b in baselines if b in built]
        if quantize:
            start = time.perf_counter()
            built["ours-" + quantize] = engines_mod.ours(checkpoint, ids, mask, dtype=dtype, device=device,
                                                         quantize=quantize, name="ours-" + quantize)
            built["ours-" + quantize].load_s = time.perf_counter() - start
        probes, probe_flops = gemm_probes(config.hidden_size, config.intermediate_size, dtype=dtype, device=device)
        fns = {name: e.run for name, e in built.items()}
        fns.update({PROBE + path: probe for path, probe in probes.items()})

        peaks: dict[str, list] = {name: [] for name in fns}
        marks: dict[str, Optional[int]] = {}
        can_reset = device.type == "cpu" and reset_peak_rss()

        def before(name):
            if can_reset:
                reset_peak_rss()
                marks[name] = rss_bytes()

        def after(name):
            if can_reset and marks.get(name) is not None:
                peaks[name].append(peak_rss_bytes() - marks[name])

        timings = measure(fns, rounds=rounds, warmup=warmup, device=device, desc=f"{size} {mix}",
                          between=before, after=after)
        reference_name = baselines[0] if baselines else "ours"
        reference = built[reference_name].last_hidden()
        keep = mask.bool()
        deviations = {name: (e.last_hidden()[keep] - reference[keep]).abs().max().item()
                      for name, e in built.items() if name != reference_name}
        quality = _quality(checkpoint, lengths, config.vocab_size, device, quantize) if quantize else None
        modes = ["default"] + (["prepack"] if prepack else []) + ([quantize] if quantize else [])
        load_memory = {m: loaded_memory(checkpoint, m) for m in modes} if memory and device.type == "cpu" else None
        notes = {name: e.note for name, e in built.items() if e.note}

    probe_gflops = {path: probe_flops / timings[PROBE + path].p50 / 1e9 for path in probes}
    peak_path = max(probe_gflops, key=probe_gflops.get)
    gemm_peak = probe_gflops[peak_path]
    flops = model_flops(config, lengths)
    real, padded = sum(lengths), len(lengths) * max(lengths)
    ours_p50 = timings["ours"].p50
    rows = []
    for name in built:
        t = timings[name]
        gflops = flops / t.p50 / 1e9
        row = {"engine": name, **t.summary(), "load_s": built[name].load_s, "tokens_per_s": real / t.p50,
               "gflops": gflops, "fraction_of_gemm_peak": gflops / gemm_peak,
               "forward_peak_rss_mb": (max(peaks[name]) / 2**20) if peaks[name] else None,
               "max_deviation": deviations.get(name, 0.0 if name == reference_name else None),
               "ours_speedup": t.p50 / ours_p50}
        rows.append(row)
    result = {
        "benchmark": "model", "size": size, "mix": mix, "mix_description": MIXES.get(mix, mix),
        "lengths": lengths, "real_tokens": real, "padded_tokens": padded, "padding_ratio": padded / real,
        "device": str(device), "dtype": str(dtype).replace("torch.", ""), "threads": threads,
        "load_average": load_average(), "torch": torch.__version__,
        "gemm_peak_gflops": gemm_peak, "gemm_peak_path": peak_path, "gemm_probes": probe_gflops,
        "gemm_probe": timings[PROBE + peak_path].summary(),
        "deviation_reference": reference_name, "engines": rows,
        "speedup": {r["engine"]: r["ours_speedup"] for r in rows if r["engine"] != "ours"},
        "notes": notes, "failed": failed, "cuda_graphs": cuda_graphs, "prepack": prepack,
    }
    if quantize:
        result["quantized"] = {"scheme": quantize, **quality,
                               "speedup_vs_fp32": timings["ours"].p50 / timings["ours-" + quantize].p50}
    if load_memory is not None:
        result["loaded_memory"] = load_memory
    return result


COLUMNS = [("engine", "engine"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("warmup_ms", "warm-up ms"),
           ("tokens_per_s", "tokens/s"), ("gflops", "GFLOP/s"), ("fraction_of_gemm_peak", "of GEMM peak"),
           ("forward_peak_rss_mb", "fwd peak MB"), ("max_deviation", "max |dev|"),
           ("ours_speedup", "ours faster by")]


def format_result(result: dict) -> str:
    lines = [f"{result['size']} {result['mix']} ({result['mix_description']}; {result['real_tokens']} real / "
             f"{result['padded_tokens']} padded tokens), {result['dtype']} on {result['device']}, "
             f"{result['threads']} threads, load average {result['load_average']}",
             format_table(result["engines"], COLUMNS),
             f"GEMM peak (one layer's GEMMs on 1024 rows, same rounds, fastest path): "
             f"{result['gemm_peak_gflops']:.1f} GFLOP/s ("
             + ", ".join(f"{path} {g:.1f}" for path, g in result["gemm_probes"].items())
             + f"); deviations against {result['deviation_reference']}"]
    lines += [f"{name} could not run: {why}" for name, why in result.get("failed", {}).items()]
    if "quantized" in result:
        q = result["quantized"]
        lines.append(f"{q['scheme']}: {q['speedup_vs_fp32']:.2f}x our fp32, min cosine {q['min_cosine_last_hidden']:.4f}, "
                     f"argmax agreement {q['argmax_agreement']:.1%} over {q['sequences']} sequences (max logit deviation "
                     f"{q['max_logit_deviation']:.3g}; {q['share_of_fp32_margins_below_twice_it']:.0%} of fp32 top-2 margins are below twice it)")
    for mode, m in result.get("loaded_memory", {}).items():
        lines.append(f"loaded ({mode}): peak RSS {m['peak_rss_mb']:.0f} MB (runtime baseline {m['baseline_rss_mb']:.0f} MB, "
                     f"safetensors {m['safetensors_mb']:.0f} MB, budget {m['rss_budget_mb']:.0f} MB: "
                     f"{'within' if m['within_budget'] else 'OVER'})")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--size", choices=list(SIZES), default="base", help="model shape (default: base)")
    parser.add_argument("--mix", choices=list(MIXES), default=None, action="append", dest="mixes",
                        help="batch mix; repeat for several (default: batch1-16). " +
                        "; ".join(f"{k}: {v}" for k, v in MIXES.items()))
    parser.add_argument("--compare", default="transformers,onnxruntime",
                        help="comma-separated baselines: transformers, onnxruntime (default: both; '' for none)")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="also time ours with int8 linears (CPU)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for every engine")
    parser.add_argument("--checkpoint", default=None, help="a local checkpoint directory (default: random weights)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--rounds", "--repeats", type=int, default=20, dest="rounds",
                        help="timed rounds per engine (default: 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up calls per engine (default: 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the loaded-model RSS measurement")
    parser.add_argument("--no-prepack", action="store_true",
                        help="load ours without prepack=True (on CPU in float32 it is on by default here)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="ours replays a CUDA graph captured for the mix's packed layout (ernie_m_fast.cuda_graphs)")
    add_output_arguments(parser)


def main_from_args(args) -> int:
    mixes = args.mixes or ["batch1-16"]
    results = [run(args.size, mix, args.compare, quantize=args.quantize, threads=args.threads,
                   checkpoint=args.checkpoint, device=args.device, dtype=getattr(torch, args.dtype),
                   rounds=args.rounds, warmup=args.warmup, memory=not args.no_memory, cuda_graphs=args.cuda_graphs,
                   prepack=False if args.no_prepack else None)
               for mix in mixes]
    result = results[0] if len(results) == 1 else {"benchmark": "model", "runs": results}
    emit(result, "\n\n".join(format_result(r) for r in results), args)
    if args.plot:
        names = [row["engine"] for row in results[0]["engines"]]
        bar_chart(args.plot, [r["mix"] for r in results],
                  {n: [next(row["p50_ms"] for row in r["engines"] if row["engine"] == n) for r in results]
                   for n in names}, "p50 latency (ms)", f"ErnieM {args.size}, {args.dtype}")
    return 0


def main(argv=None) -> int:
    import argparse

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--_memory-child"]:  # internal: one loaded_memory measurement in a fresh process
        _memory_child(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="ernie-m-fast bench model", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

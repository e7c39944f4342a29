"""`ernie-m-fast`: the demo, build and backend info, and the benchmarks."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args) -> int:
    import torch

    import ernie_m_fast as emf
    from ernie_m_fast.ops import backends

    info = {"build": emf.build_info(), "torch": torch.__version__, "backends": {}}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        info["backends"][device] = {
            name: (backends.unavailable_reasons(name, torch.device(device)) or "available")
            for name in backends.BACKEND_NAMES
        }
        info["backends"][device]["auto"] = backends.resolve("auto", device)
    print(json.dumps(info, indent=2))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(checkpoint=args.checkpoint, backend=args.backend, device=args.device, dtype=args.dtype)


def _cmd_bench(args) -> int:
    from .bench import run_benchmark

    return run_benchmark(args)


def _cmd_convert(args) -> int:
    from .paddle import convert_checkpoint

    print(f"wrote {convert_checkpoint(args.src, args.dst, dtype=args.dtype)}")
    return 0


def _cmd_serve(args) -> int:
    from .serving.cli import settings_from_args
    from .serving.server import run_server

    return run_server(settings_from_args(args))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ernie-m-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run every head on multilingual text (a small local model if no checkpoint)")
    demo.add_argument("--checkpoint", help="a local directory or hub repo id; default: build a small random model")
    demo.add_argument("--backend", default="auto", help="auto, torch, cpu, triton, cuda or cuda_sim")
    demo.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    demo.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="how the extension was built and which backends can run here")
    info.set_defaults(func=_cmd_info)

    bench = sub.add_parser("bench", help="benchmarks; each prints ratios against a baseline measured in the same run")
    if "bench" in (sys.argv[1:] if argv is None else argv):  # the benchmarks' modules import torch: only when asked
        from .bench import add_subcommands

        add_subcommands(bench)
    bench.set_defaults(func=_cmd_bench)

    convert = sub.add_parser("convert", help="write a PaddleNLP (or any loadable) ErnieM checkpoint as a "
                                              "transformers directory: model.safetensors, config.json, tokenizer")
    convert.add_argument("src", help="the checkpoint directory, e.g. PaddleNLP's (model_state.pdparams + config)")
    convert.add_argument("dst", help="the directory to write")
    convert.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                         help="weights' dtype in the output (default float32)")
    convert.set_defaults(func=_cmd_convert)

    serve = sub.add_parser("serve", help="an HTTP server in text-embeddings-inference's API (needs the [serve] extra)")
    from .serving.cli import add_serve_arguments

    add_serve_arguments(serve)
    serve.set_defaults(func=_cmd_serve)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

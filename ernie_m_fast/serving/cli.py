"""`ernie-m-fast serve` arguments (TEI's names where TEI has the option) -> ServerSettings."""

from __future__ import annotations

import argparse
import os

from .settings import POOLINGS, TASKS, ServerSettings


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--model", required=True, help="a checkpoint directory or hub repo id (tokenizer files beside the weights)")
    add("--task", default="auto", choices=TASKS, help="auto: from config.architectures")
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8080, help="0: any free port (logged as 'listening on ...')")
    add("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
        help="default float16 on CUDA, float32 on CPU")
    add("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    add("--backend", default="auto", help="auto, torch, cpu, triton, cuda or cuda_sim")
    add("--pooling", default=None, choices=POOLINGS,
        help="/embed pooling; default: 1_Pooling/config.json when the checkpoint has one, else cls")
    add("--max-batch-tokens", type=int, default=16384, help="real (unpadded) tokens per model batch")
    add("--max-batch-requests", type=int, default=None, help="inputs per model batch (default: no limit)")
    add("--max-client-batch-size", type=int, default=32, help="inputs per request (413 above)")
    add("--max-concurrent-requests", type=int, default=512, help="requests in flight (429 above)")
    add("--max-input-length", type=int, default=None,
        help="tokens per input (default and upper bound: max_position_embeddings - 2)")
    add("--auto-truncate", action="store_true", help="truncate over-long inputs unless a request says truncate=false")
    add("--payload-limit", type=int, default=2_000_000, help="request body bytes (413 above)")
    add("--api-key", default=os.environ.get("API_KEY"), help="require 'Authorization: Bearer KEY' (env API_KEY)")
    add("--json-logs", action="store_true", help="one JSON object per log line")
    add("--cuda-graphs", action="store_true", help="replay CUDA graphs for a few static batch layouts")
    add("--tokenization-workers", type=int, default=1, help="threads that tokenize (off the model thread)")
    add("--graceful-timeout", type=float, default=30.0, help="seconds SIGTERM waits for in-flight requests")
    add("--prepack", action=argparse.BooleanOptionalAction, default=None,
        help="weights packed once for oneDNN (CPU, float32; default: on there)")
    add("--quantize", default=None, choices=["int8"], help="int8 GEMMs on CPU (float32 activations)")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(
        model=args.model, task=args.task, host=args.host, port=args.port, dtype=args.dtype, device=args.device,
        backend=args.backend, pooling=args.pooling, max_batch_tokens=args.max_batch_tokens,
        max_batch_requests=args.max_batch_requests, max_client_batch_size=args.max_client_batch_size,
        max_concurrent_requests=args.max_concurrent_requests, max_input_length=args.max_input_length,
        auto_truncate=args.auto_truncate, payload_limit=args.payload_limit, api_key=args.api_key,
        json_logs=args.json_logs, cuda_graphs=args.cuda_graphs, tokenization_workers=args.tokenization_workers,
        graceful_timeout=args.graceful_timeout, prepack=args.prepack, quantize=args.quantize,
    )

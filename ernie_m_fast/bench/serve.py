"""`ernie-m-fast bench serve`: the HTTP server against the in-process model, in one run.

Starts `ernie-m-fast serve` on 127.0.0.1 (a free port) with a random model of the given shape
(base by default: hidden 768, 12 layers, 12 heads; the vocabulary is a small local tokenizer's,
which changes nothing but the embedding table's size), and inputs of exactly `tokens` tokens. Each
round measures, interleaved so that drift hits all alike:

- inproc_single: the in-process call on one input (tokenize + forward + pool), `singles` times;
- served_single: one client, one request at a time, `singles` requests (one-at-a-time serving);
- served_concurrent: `clients` concurrent clients, `requests` requests;
- inproc_batched: the in-process model on the same `requests` inputs batched by the same token budget.

Reports medians over rounds: p50/p99 latency and requests/s, the inputs per model batch the server
formed under concurrent load (from its /metrics), and the ratios the issue sets targets for (2-core
CPU, base shape, fp32, 16-token inputs): the server's p50 overhead over the in-process call at one
client (target <= 2 ms), concurrent serving's throughput against the in-process batched throughput
(target >= 0.9x) and against one-at-a-time serving (target > 1x).
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

import torch

from .report import add_output_arguments, emit, format_table


def _texts_of_length(tokenizer, count: int, tokens: int) -> list[str]:
    """Distinct texts from the bundled corpus that tokenize to exactly `tokens` ids ([CLS]/[SEP] included)."""
    from ..tiny import bundled_corpus_lines

    found = []
    for line in bundled_corpus_lines():
        for end in range(1, len(line) + 1):
            length = len(tokenizer(line[:end])["input_ids"])
            if length == tokens:
                found.append(line[:end].strip() or line[:end])
                break
            if length > tokens:
                break
    found = [t for t in dict.fromkeys(found) if len(tokenizer(t)["input_ids"]) == tokens]
    if not found:
        raise ValueError(f"no corpus text tokenizes to exactly {tokens} tokens")
    return [found[i % len(found)] for i in range(count)]


def _build_model(directory: str, hidden: int, layers: int, heads: int, seed: int) -> None:
    from ..configuration import ErnieMConfig
    from ..modeling import ErnieMModel
    from ..tiny import train_tiny_tokenizer
    from ..tokenization import ErnieMTokenizer

    train_tiny_tokenizer(directory)
    vocab = len(ErnieMTokenizer.from_pretrained(directory))
    config = ErnieMConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=4 * hidden, max_position_embeddings=514)
    torch.manual_seed(seed)
    ErnieMModel(config).save_pretrained(directory)


class _Server:
    def __init__(self, model_dir: str, log_path: str, args: list[str], threads: Optional[int]):
        self.log_path = log_path
        self._log = open(log_path, "w")
        command = [sys.executable, "-m", "ernie_m_fast.cli", "serve", "--model", model_dir, "--host", "127.0.0.1",
                   "--port", "0", *args]
        env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 600
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(log_path) as f:
                log = f.read()
            if self.port is None and (match := re.search(r"listening on http://127\.0\.0\.1:(\d+)", log)):
                self.port = int(match.group(1))
            if "model loaded" in log:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not start:\n{open(log_path).read()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _exit_on_sigterm():
    """SIGTERM -> SystemExit (the previous handler is returned), on the main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def exit_now(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, exit_now)


def _batch_counts(port: int) -> tuple[float, float]:
    """(model batches, inputs batched) so far, from the server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
        text = answer.read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return float(samples["ernie_m_fast_batch_size_count"]), float(samples["ernie_m_fast_batch_size_sum"])


def _latency_stats(seconds: list[float], wall: float) -> dict:
    ordered = sorted(seconds)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]  # noqa: E731
    return {"p50_ms": pick(50) * 1e3, "p99_ms": pick(99) * 1e3, "rps": len(seconds) / wall}


def run(hidden: int = 768, layers: int = 12, heads: int = 12, tokens: int = 16, clients: int = 32,
        requests: int = 640, singles: int = 40, repeats: int = 3, max_batch_tokens: int = 16384,
        dtype=torch.float32, device=None, threads: Optional[int] = None, seed: int = 0) -> dict:
    """`threads`: torch threads on both sides (the server through OMP_NUM_THREADS); default torch's."""
    from ..serving.engine import Engine
    from ..serving.loadgen import run_load_sync
    from ..serving.settings import ServerSettings

    device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if threads:
        torch.set_num_threads(threads)
    dtype_name = str(dtype).replace("torch.", "")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        _build_model(model_dir, hidden, layers, heads, seed)
        settings = ServerSettings(model=model_dir, max_batch_tokens=max_batch_tokens, dtype=dtype_name, device=device)
        engine = Engine(settings)
        texts = _texts_of_length(engine.tokenizer, max(requests, singles), tokens)
        bodies = [("/embed", json.dumps({"inputs": t}).encode()) for t in texts]
        server = _Server(model_dir, os.path.join(tmp, "server.log"),
                         ["--max-batch-tokens", str(max_batch_tokens), "--dtype", dtype_name, "--device", device],
                         threads)
        previous = _exit_on_sigterm()  # so `finally` stops the server when the benchmark is killed
        try:
            engine.run_texts("embed", texts[:clients])  # warm-up, both sides
            run_load_sync("127.0.0.1", server.port, bodies[:clients], clients)
            rounds: dict[str, list[dict]] = {k: [] for k in
                                             ("inproc_single", "served_single", "served_concurrent", "inproc_batched")}
            for _ in range(repeats):
                seconds, start = [], time.perf_counter()
                for text in texts[:singles]:
                    t0 = time.perf_counter()
                    engine.run_texts("embed", [text])
                    seconds.append(time.perf_counter() - t0)
                rounds["inproc_single"].append(_latency_stats(seconds, time.perf_counter() - start))

                single = run_load_sync("127.0.0.1", server.port, bodies[:singles], 1)
                rounds["served_single"].append(_latency_stats(single.latencies(), single.wall_seconds))

                batches_before, inputs_before = _batch_counts(server.port)
                concurrent = run_load_sync("127.0.0.1", server.port, bodies[:requests], clients)
                if len(concurrent.latencies()) != requests:
                    raise RuntimeError(f"{requests - len(concurrent.latencies())} requests failed under load")
                batches, inputs = (after - before for after, before in zip(_batch_counts(server.port),
                                                                           (batches_before, inputs_before)))
                rounds["served_concurrent"].append({**_latency_stats(concurrent.latencies(), concurrent.wall_seconds),
                                                    "inputs_per_batch": inputs / batches})

                start = time.perf_counter()
                engine.run_texts("embed", texts[:requests])
                wall = time.perf_counter() - start
                rounds["inproc_batched"].append({"rps": requests / wall, "ms_per_input": wall / requests * 1e3})
            with open(server.log_path) as f:
                log = f.read()
        finally:
            exit_code = server.stop()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    summary = {mode: {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
               for mode, runs in rounds.items()}
    return {
        "shape": {"hidden": hidden, "layers": layers, "heads": heads, "tokens_per_input": tokens,
                  "vocab": len(engine.tokenizer)},
        "device": device, "dtype": dtype_name, "backend": engine.info()["backend"], "clients": clients,
        "requests": requests, "singles": singles, "repeats": repeats, "max_batch_tokens": max_batch_tokens,
        "torch_threads": torch.get_num_threads(), "results": summary,
        "server_overhead_p50_ms_at_one_client": round(summary["served_single"]["p50_ms"]
                                                      - summary["inproc_single"]["p50_ms"], 3),
        "concurrent_vs_inproc_batched_throughput": round(summary["served_concurrent"]["rps"]
                                                         / summary["inproc_batched"]["rps"], 3),
        "concurrent_vs_one_at_a_time_throughput": round(summary["served_concurrent"]["rps"]
                                                        / summary["served_single"]["rps"], 3),
        "server_exit_code": exit_code, "server_log_lines": log.count("\n"),
    }


def add_arguments(parser) -> None:
    parser.add_argument("--hidden", type=int, default=768, help="model width (default: 768, the base shape)")
    parser.add_argument("--layers", type=int, default=12, help="encoder layers (default: 12)")
    parser.add_argument("--heads", type=int, default=12, help="attention heads (default: 12)")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per input (default: 16)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    parser.add_argument("--requests", type=int, default=640, help="requests per concurrent round (default: 640)")
    parser.add_argument("--singles", type=int, default=40, help="requests per one-at-a-time round (default: 40)")
    parser.add_argument("--max-batch-tokens", type=int, default=16384, help="the server's token budget")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                        help="default float16 on CUDA, float32 on CPU")
    parser.add_argument("--rounds", "--repeats", type=int, default=3, dest="rounds", help="timed rounds (default: 3)")
    add_output_arguments(parser)


def main_from_args(args) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if device.startswith("cuda") else torch.float32)
    result = run(args.hidden, args.layers, args.heads, args.tokens, args.clients, args.requests, args.singles,
                 args.rounds, args.max_batch_tokens, dtype=dtype, device=device, threads=args.threads)
    rows = [{"mode": mode, **stats} for mode, stats in result["results"].items()]
    table = format_table(rows, [("mode", "mode"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("rps", "req/s"),
                                ("ms_per_input", "ms/input"), ("inputs_per_batch", "inputs/batch")])
    clients = result["clients"]
    table += (f"\nserver overhead at one client (p50, served_single - inproc_single): "
              f"{result['server_overhead_p50_ms_at_one_client']} ms (target <= 2 ms)"
              f"\n{clients} clients vs in-process batched throughput (served_concurrent / inproc_batched): "
              f"{result['concurrent_vs_inproc_batched_throughput']}x (target >= 0.9x)"
              f"\n{clients} clients vs one-at-a-time serving throughput (served_concurrent / served_single): "
              f"{result['concurrent_vs_one_at_a_time_throughput']}x (target > 1x)")
    emit(result, table, args)
    if args.plot:
        from .report import bar_chart

        bar_chart(args.plot, [r["mode"] for r in rows], {"req/s": [r.get("rps", 0.0) for r in rows]}, "requests/s",
                  f"serve, {result['clients']} clients")
    return 0

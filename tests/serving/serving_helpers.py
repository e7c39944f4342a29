"""Serving test helpers: small checkpoints built here, the real server in a subprocess on 127.0.0.1.

Every server binds 127.0.0.1 port 0 (a free port, read back from its log), logs to a file (a pipe
nobody reads could fill and block it), and is stopped by the fixture that started it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

import torch

import ernie_m_fast as emf
from ernie_m_fast.tiny import train_tiny_tokenizer

LABELS = {0: "negative", 1: "neutral", 2: "positive"}
MAX_POSITIONS = 66  # inputs up to 64 tokens
API_KEY = "test-key-123"


NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
HEADS = {  # head -> (class name, config extras)
    "base": ("ErnieMModel", {}),
    "classifier": ("ErnieMForSequenceClassification", {"id2label": LABELS}),
    "reranker": ("ErnieMForSequenceClassification", {"id2label": {0: "LABEL_0"}}),  # one label: TEI's re-ranker
    "ner": ("ErnieMForTokenClassification", {"id2label": NER_LABELS}),
    "uie": ("ErnieMForInformationExtraction", {}),
}


def build_checkpoint(path, head: str, seed: int = 0) -> str:
    """A small random ErnieM checkpoint with a tiny tokenizer beside it; `head` is a key of HEADS."""
    train_tiny_tokenizer(path)
    vocab = len(emf.ErnieMTokenizer.from_pretrained(path))
    class_name, extra = HEADS[head]
    config = emf.ErnieMConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=MAX_POSITIONS, **extra)
    torch.manual_seed(seed)
    model = getattr(emf, class_name)(config)
    with torch.no_grad():  # non-trivial biases and norms, so outputs differ clearly between inputs
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(path)
    return str(path)


class ServerProcess:
    """`ernie-m-fast serve` in a subprocess; `request()` speaks plain http.client to it."""

    def __init__(self, model_dir: str, log_path, *args: str, api_key: str | None = None):
        self.api_key = api_key
        self.log_path = str(log_path)
        command = [sys.executable, "-m", "ernie_m_fast.cli", "serve", "--model", model_dir, "--host", "127.0.0.1",
                   "--port", "0", *args]
        if api_key:
            command += ["--api-key", api_key]
        self._log = open(self.log_path, "w")
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_for_port()

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def _wait_for_port(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"server did not start:\n{self.log()}")

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request("GET", "/health")[0] == 200:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"server never became healthy:\n{self.log()}")

    def request(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None,
                auth: bool = True):
        """(status, parsed JSON or raw bytes, headers). `body` is JSON-encoded; `raw` is sent as-is."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            send_headers = {"Content-Type": "application/json"}
            if auth and self.api_key:
                send_headers["Authorization"] = f"Bearer {self.api_key}"
            send_headers.update(headers or {})
            payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=payload, headers=send_headers)
            response = conn.getresponse()
            data = response.read()
            kind = response.getheader("content-type", "")
            parsed = json.loads(data) if kind.startswith("application/json") and data else data
            return response.status, parsed, dict(response.getheaders())
        finally:
            conn.close()

    def metrics(self) -> dict:
        """Prometheus samples as {'name{labels}': value}."""
        status, text, _ = self.request("GET", "/metrics")
        assert status == 200
        samples = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                samples[key] = float(value)
        return samples

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class DirectModel:
    """The model's own output for one input, computed in this process (no server, no batching)."""

    def __init__(self, model_dir: str):
        self.tokenizer = emf.ErnieMTokenizer.from_pretrained(model_dir)
        # loaded as the server loads a float32 CPU model (prepacked oneDNN weights), so both sides run
        # the same GEMMs: the reranker fixture amplifies its head 3,000x, and with it the last-bit
        # differences between two GEMM libraries
        self.model = emf.ErnieMFast.from_pretrained(model_dir, prepack=True)

    def ids(self, text, pair=None, max_length=None, side="right"):
        self.tokenizer.truncation_side = side
        enc = self.tokenizer(text, pair, truncation=max_length is not None, max_length=max_length,
                             return_tensors="pt")
        self.tokenizer.truncation_side = "right"
        return enc["input_ids"]

    def embedding(self, text, pooling="cls", normalize=True, **kw):
        ids = self.ids(text, **kw)
        with torch.inference_mode():
            hidden = self.model.base_model(input_ids=ids).last_hidden_state[0]
        vector = hidden[0] if pooling == "cls" else hidden.mean(0)
        return torch.nn.functional.normalize(vector, dim=0) if normalize else vector

    def logits(self, text, pair=None, **kw):
        with torch.inference_mode():
            return self.model(input_ids=self.ids(text, pair, **kw)).logits[0]

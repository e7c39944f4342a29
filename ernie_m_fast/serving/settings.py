"""Everything `ernie-m-fast serve` can be told, in one picklable record (Ray ships it to replicas)."""

from __future__ import annotations

import dataclasses
from typing import Optional

TASKS = ("auto", "embed", "predict", "extract", "token-classify")
POOLINGS = ("cls", "mean")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    model: str  # a local checkpoint directory or a hub repo id
    task: str = "auto"  # auto: from config.architectures
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (the bound port is logged)
    dtype: Optional[str] = None  # float32 / float16 / bfloat16; default float16 on CUDA, float32 on CPU
    device: Optional[str] = None  # default cuda when available
    backend: str = "auto"
    pooling: Optional[str] = None  # /embed pooling; default from 1_Pooling/config.json, else cls (as TEI)
    max_batch_tokens: int = 16384  # real (unpadded) tokens per model batch
    max_batch_requests: Optional[int] = None  # inputs per model batch; None: the token budget alone
    max_client_batch_size: int = 32  # inputs per HTTP request
    max_concurrent_requests: int = 512  # requests in flight before 429
    max_input_length: Optional[int] = None  # tokens per input; default max_position_embeddings - 2
    auto_truncate: bool = False  # truncate over-long inputs when a request does not say
    payload_limit: int = 2_000_000  # request body bytes (TEI's default); larger bodies get 413
    api_key: Optional[str] = None  # when set, every inference route needs `Authorization: Bearer KEY`
    json_logs: bool = False
    cuda_graphs: bool = False
    tokenization_workers: int = 1
    graceful_timeout: float = 30.0  # seconds SIGTERM waits for in-flight requests before exiting anyway
    prepack: Optional[bool] = None  # oneDNN-packed weights; None: on for a float32 model on CPU
    quantize: Optional[str] = None  # "int8": int8 GEMMs on CPU (from_pretrained's quantize=)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("max_batch_tokens", "max_client_batch_size", "max_concurrent_requests", "payload_limit",
                     "tokenization_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_batch_requests", "max_input_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.max_input_length is not None and self.max_input_length > self.max_batch_tokens:
            raise ValueError(f"max_input_length ({self.max_input_length}) exceeds max_batch_tokens "
                             f"({self.max_batch_tokens}): such an input could never be batched")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")

"""Scale-out on Ray (the [ray] extra): the same server as Ray Serve replicas, and batch inference on Ray Data.

Replicas behind Ray Serve's proxy, each one the FastAPI app of `ernie-m-fast serve` with its own
model, batcher and metrics::

    import ray
    from ray import serve
    from ernie_m_fast.serving.ray import deployment

    ray.init()
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    serve.run(deployment("path/to/checkpoint", num_replicas=4, num_gpus=1), route_prefix="/")
    # POST http://127.0.0.1:8000/embed  {"inputs": ["..."]}  -- the same API as `ernie-m-fast serve`

Corpora too big for one machine, one model per actor, batches by the server's token budget::

    ds = ray.data.read_parquet("texts/")            # a "text" column
    out = batch_inference(ds, "path/to/checkpoint", kind="embed", concurrency=8, num_gpus=1)
    out.write_parquet("embeddings/")                 # + an "embedding" column

The plain alternative needs no Ray: run N `ernie-m-fast serve` processes (one per GPU or a few CPU
cores each) behind any HTTP load balancer; the server is stateless.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .settings import ServerSettings


def deployment(model: str, *, num_replicas: int = 1, num_cpus: float = 1.0, num_gpus: float = 0.0,
               name: str = "ErnieMServer", **server_options):
    """A bound Ray Serve application: `num_replicas` replicas of the server's FastAPI app.

    `server_options` are `ServerSettings` fields (task, dtype, device, max_batch_tokens, ...).
    Each replica loads its model while it starts, so Serve reports it ready only once it can answer."""
    from ray import serve

    settings = ServerSettings(model=model, **server_options)

    def build_app():  # runs on each replica
        from .app import create_app

        return create_app(settings, load_in_background=False)

    @serve.deployment(name=name, num_replicas=num_replicas, max_ongoing_requests=settings.max_concurrent_requests,
                      ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus})
    @serve.ingress(build_app)
    class ErnieMServer:
        pass

    return ErnieMServer.bind()


class _BatchPredictor:
    """One model per Ray Data actor; each call answers one block of texts."""

    def __init__(self, settings: ServerSettings, kind: str, text_column: str, normalize: bool):
        from .engine import Engine

        self.engine = Engine(settings)
        self.kind, self.text_column, self.normalize = kind, text_column, normalize

    def __call__(self, batch: dict) -> dict:
        from .engine import postprocess_scores

        texts = [str(t) for t in batch[self.text_column]]
        rows = self.engine.run_texts(self.kind, texts, truncate=True)
        if self.kind == "embed":
            if self.normalize:
                rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            batch["embedding"] = rows
        else:
            predictions = [postprocess_scores(row, self.engine.id2label, raw_scores=False) for row in rows]
            batch["label"] = np.array([p[0]["label"] for p in predictions])
            batch["score"] = np.array([p[0]["score"] for p in predictions])
        return batch


def batch_inference(dataset, model: str, *, kind: str = "embed", text_column: str = "text", normalize: bool = True,
                    batch_size: Optional[int] = 256, concurrency: int = 1, num_cpus: float = 1.0,
                    num_gpus: float = 0.0, **server_options):
    """`dataset.map_batches` with one model per actor: adds `embedding` (kind="embed", L2-normalised
    unless normalize=False, the server's pooling) or `label` and `score` (kind="predict").

    Inputs longer than the model's limit are truncated. `server_options` are `ServerSettings` fields."""
    if kind not in ("embed", "predict"):
        raise ValueError(f"kind must be 'embed' or 'predict', got {kind!r}")
    settings = ServerSettings(model=model, **server_options)
    return dataset.map_batches(_BatchPredictor, fn_constructor_kwargs=dict(settings=settings, kind=kind,
                                                                           text_column=text_column,
                                                                           normalize=normalize),
                               batch_size=batch_size, batch_format="numpy", concurrency=concurrency,
                               num_cpus=num_cpus, num_gpus=num_gpus)

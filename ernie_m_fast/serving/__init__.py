"""Serving: an HTTP server in text-embeddings-inference's API, and scale-out on Ray.

    app       FastAPI routes in TEI's shapes and the admission middleware   (needs the [serve] extra)
    batcher   one model thread; batches formed by a real-token budget
    engine    checkpoint + tokenizer; one batch of one kind of work
    pipelines /extract and /token-classify: the task pipelines, their model rows sent to the batcher
    metrics   Prometheus metrics                                            (prometheus-client)
    server    uvicorn, 503 while loading, drain on SIGTERM
    loadgen   a small asyncio HTTP/1.1 load generator (tests and `bench serve`)
    ray       Ray Serve deployment and Ray Data batch inference              (needs the [ray] extra)

Importing this package imports none of the optional dependencies.
"""

from .settings import ServerSettings


def create_app(settings: ServerSettings, load_in_background: bool = True):
    from .app import create_app as _create_app

    return _create_app(settings, load_in_background)


def run_server(settings: ServerSettings) -> int:
    from .server import run_server as _run_server

    return _run_server(settings)


__all__ = ["ServerSettings", "create_app", "run_server"]

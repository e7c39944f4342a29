"""Prometheus metrics (prometheus-client), one registry per server so several can share a process.

    ernie_m_fast_requests_total{route,status}                 counter
    ernie_m_fast_request_duration_seconds{route,status}       histogram, whole request
    ernie_m_fast_inputs_total{route}                          counter, inputs answered with 200
    ernie_m_fast_queue_size                                   gauge, inputs waiting for the model thread
    ernie_m_fast_queue_duration_seconds                       histogram, per input, queued -> batch starts
    ernie_m_fast_batch_size                                   histogram, inputs (rows) per model batch
    ernie_m_fast_batch_requests                               histogram, requests whose rows share a batch
    ernie_m_fast_batch_tokens                                 histogram, real tokens per model batch
    ernie_m_fast_inference_duration_seconds                   histogram, per model batch
    ernie_m_fast_requests_in_flight                           gauge
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "ernie_m_fast"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.request_duration = Histogram(f"{PREFIX}_request_duration_seconds", "HTTP request latency",
                                          ["route", "status"], buckets=_LATENCY_BUCKETS, registry=r)
        self.inputs = Counter(f"{PREFIX}_inputs", "inputs answered successfully, by route", ["route"], registry=r)
        self.queue_size = Gauge(f"{PREFIX}_queue_size", "inputs waiting for the model thread", registry=r)
        self.queue_duration = Histogram(f"{PREFIX}_queue_duration_seconds", "time an input waits for its batch",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(f"{PREFIX}_batch_size", "inputs per model batch", buckets=_SIZE_BUCKETS,
                                    registry=r)
        self.batch_requests = Histogram(f"{PREFIX}_batch_requests", "requests whose rows share one model batch",
                                        buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram(f"{PREFIX}_batch_tokens", "real tokens per model batch",
                                      buckets=_TOKEN_BUCKETS, registry=r)
        self.inference_duration = Histogram(f"{PREFIX}_inference_duration_seconds", "model time per batch",
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(f"{PREFIX}_requests_in_flight", "HTTP requests being served", registry=r)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.request_duration.labels(route, str(status)).observe(seconds)

    def observe_batch(self, items, requests: int, started: float, finished: float) -> None:
        """Called on the model thread after each batch (items carry `row` and `queued_at`)."""
        self.batch_size.observe(len(items))
        self.batch_requests.observe(requests)
        self.batch_tokens.observe(sum(len(item.row) for item in items))
        self.inference_duration.observe(finished - started)
        for item in items:
            self.queue_duration.observe(started - item.queued_at)

    def render(self) -> bytes:
        return generate_latest(self.registry)

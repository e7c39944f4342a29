"""A small asyncio HTTP/1.1 load generator: N keep-alive connections, a bounded list of requests.

Cheap per request (no client library), so on a 2-core machine the client steals little CPU from the
server it measures. Used by `ernie-m-fast bench serve` and the serving tests; it only speaks to the
address it is given (loopback in both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Optional, Sequence


@dataclasses.dataclass
class Outcome:
    index: int  # position in the request list
    status: Optional[int]  # None: the connection failed (refused, reset, closed mid-answer)
    body: bytes
    seconds: float
    error: str = ""


@dataclasses.dataclass
class LoadResult:
    outcomes: list  # Outcome per request that was attempted, in completion order
    wall_seconds: float

    def latencies(self, status: int = 200) -> list[float]:
        return sorted(o.seconds for o in self.outcomes if o.status == status)

    def percentile(self, q: float, status: int = 200) -> float:
        values = self.latencies(status)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]

    def requests_per_second(self, status: int = 200) -> float:
        return len(self.latencies(status)) / self.wall_seconds if self.wall_seconds else float("nan")


class _Connection:
    def __init__(self, host: str, port: int, headers: dict):
        self.host, self.port = host, port
        self.reader = self.writer = None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode()
                          + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
        if "content-length" not in fields:
            raise ConnectionError("answer without Content-Length")
        payload = await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_load(host: str, port: int, requests: Sequence[tuple[str, bytes]], concurrency: int,
                   headers: Optional[dict] = None, stop_on_refusal: bool = False,
                   method: str = "POST") -> LoadResult:
    """Send `requests` ((path, JSON body) pairs) over `concurrency` connections, each request once.

    `stop_on_refusal`: a connection that gets a 503 or a connection error sends nothing more (a
    draining server's clients back off), so some requests may never be attempted."""
    next_index = 0
    outcomes: list[Outcome] = []

    async def worker():
        nonlocal next_index
        conn = _Connection(host, port, headers or {})
        try:
            while next_index < len(requests):
                index = next_index
                next_index += 1
                path, body = requests[index]
                started = time.perf_counter()
                try:
                    status, payload = await conn.request(method, path, body)
                    outcomes.append(Outcome(index, status, payload, time.perf_counter() - started))
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    outcomes.append(Outcome(index, None, b"", time.perf_counter() - started, repr(exc)))
                    status = None
                if stop_on_refusal and status in (None, 503):
                    return
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(outcomes, time.perf_counter() - started)


def run_load_sync(*args, **kwargs) -> LoadResult:
    """`run_load` on a fresh event loop: uvloop's when installed (the [serve] extra), which spends less of
    the CPU that the server it measures shares on one machine."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the [serve] extra (not on Windows)
        return asyncio.run(run_load(*args, **kwargs))
    return uvloop.run(run_load(*args, **kwargs))

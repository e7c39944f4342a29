"""Run the app under uvicorn with TEI's lifecycle: 503 while loading, drain on SIGTERM, exit 0.

SIGTERM (or Ctrl-C): the server keeps its socket open but answers every new request with 503
(so load balancers see it leave, and no client gets a connection reset), lets every admitted
request finish (up to `graceful_timeout` seconds), then closes and exits 0. A second signal exits
at once. The bound address is logged as `listening on http://HOST:PORT` (port 0 picks a free port).
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time

from .settings import ServerSettings

logger = logging.getLogger("ernie_m_fast.serving")


class _JsonFormatter(logging.Formatter):
    _FIELDS = ("method", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        line.update({k: getattr(record, k) for k in self._FIELDS if hasattr(record, k)})
        return json.dumps(line, ensure_ascii=False)


def configure_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("ernie_m_fast.serving", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(logging.INFO)
        log.propagate = False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(settings: ServerSettings) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a clean drain, 1 if loading failed)."""
    import uvicorn

    from .app import create_app

    configure_logging(settings.json_logs)
    app = create_app(settings, load_in_background=True)
    state = app.state.serving
    exit_status = [0]

    class DrainingServer(uvicorn.Server):
        drain_started = None

        def handle_exit(self, sig, frame):
            if self.drain_started is not None or sig not in (signal.SIGTERM, signal.SIGINT):
                return super().handle_exit(sig, frame)  # a second signal: stop now
            self.drain_started = time.monotonic()
            state.draining = True
            logger.info("signal %d: draining, %d requests in flight (503 to new ones)", sig, state.tracked)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_started is not None:
                waited = time.monotonic() - self.drain_started
                if state.tracked == 0 or waited > settings.graceful_timeout:
                    logger.info("drained: admitted=%d completed=%d still_in_flight=%d after %.2fs",
                                state.admitted_total, state.completed_total, state.tracked, waited)
                    self.should_exit = True
            return await super().on_tick(counter)

    def on_load_failure(exc):
        exit_status[0] = 1
        server.should_exit = True

    state.on_load_failure = on_load_failure
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_keep_alive=30,
                            timeout_graceful_shutdown=settings.graceful_timeout)
    server = DrainingServer(config)
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logger.info("listening on http://%s:%d (model %s loading)", shown, port, settings.model)
    server.run(sockets=[sock])
    return exit_status[0]

"""The HTTP API: a FastAPI app in text-embeddings-inference's shapes, on the batcher and the engine.

    POST /embed           {inputs, truncate, truncation_direction, normalize, dimensions} -> [[float]]
    POST /predict         {inputs, truncate, truncation_direction, raw_scores} -> [{score, label}] | [[...]]
    POST /tokenize        {inputs, add_special_tokens} -> [[{id, text, special, start, stop}]]
    POST /extract         {inputs, schema, position_prob, schema_lang} -> UIE-M results, one per input
    POST /token-classify  {inputs, aggregation_strategy, ignore_labels} -> entities, one list per input
    GET  /health /info /metrics, OpenAPI at /docs

Everything in front of the routes (API key, payload limit, draining, the in-flight limit, metrics
and the one log line per request) is one ASGI middleware, `AdmissionGate`, so an error answered
there costs no routing or body parsing. The model, the batcher and the metrics are created when the
ASGI lifespan starts, so each process (a Ray Serve replica too) builds its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import errors, schemas
from .encoding import json_bytes
from .batcher import Batcher
from .engine import Engine, postprocess_embedding, postprocess_scores
from .metrics import ServerMetrics
from .pipelines import row_runner
from .settings import ServerSettings

logger = logging.getLogger("ernie_m_fast.serving")
access_logger = logging.getLogger("ernie_m_fast.serving.access")

INFERENCE_ROUTES = frozenset({"/embed", "/predict", "/tokenize", "/extract", "/token-classify"})
PROTECTED_ROUTES = INFERENCE_ROUTES | {"/info"}  # with --api-key; health, metrics and docs stay open
ROUTES = PROTECTED_ROUTES | {"/health", "/metrics", "/docs", "/openapi.json"}
UNTRACKED_ROUTES = frozenset({"/health", "/metrics"})  # not waited for when draining
INLINE_TOKENIZE_CHARS = 2000  # requests with at most this many characters are tokenized on the event loop
PIPELINE_WORKERS = 64  # at most this many /extract or /token-classify requests run (and batch) at once


class ServingState:
    """What a running server holds; filled in when the ASGI lifespan starts."""

    def __init__(self, settings: ServerSettings, load_in_background: bool):
        self.settings = settings
        self.load_in_background = load_in_background
        self.metrics = None
        self.engine: Optional[Engine] = None
        self.batcher = None
        self.tokenize_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.pipeline_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.load_error: Optional[BaseException] = None
        self.on_load_failure = None  # set by the server: exits the process
        self.draining = False
        self.in_flight = 0  # inference requests admitted and not yet answered
        self.tracked = 0  # every admitted request that draining waits for
        self.admitted_total = 0
        self.completed_total = 0

    def ready_engine(self) -> Engine:
        if self.engine is None:
            raise errors.loading()
        return self.engine

    async def tokenize(self, texts: list, fn, *args):
        """`fn(*args)`: tokenization, never on the model thread. Short requests are tokenized right here on
        the event loop (two thread hand-offs cost more than a sentence's tokenization), longer ones on the
        tokenization pool so that the event loop keeps answering meanwhile."""
        if sum(len(t) if isinstance(t, str) else len(t[0]) + len(t[1]) for t in texts) <= INLINE_TOKENIZE_CHARS:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.tokenize_pool, fn, *args)

    async def infer(self, kind: str, engine: Engine, items: list, request) -> list:
        """Tokenize `items` (truncating as the request says), then one result row each from the batcher."""
        truncate = self.settings.auto_truncate if request.truncate is None else request.truncate
        ids = await self.tokenize(items, engine.encode, items, truncate, request.truncation_direction.lower())
        return await self.batcher.run(kind, ids)

    # ------------------------------------------------------------------ lifespan
    def start(self) -> None:
        """On the event loop, when the ASGI lifespan starts."""
        self.loop = asyncio.get_running_loop()
        self.metrics = ServerMetrics()
        self.tokenize_pool = concurrent.futures.ThreadPoolExecutor(self.settings.tokenization_workers,
                                                                   thread_name_prefix="ernie-m-fast-tokenize")
        # one thread per /extract or /token-classify request in progress (its pipeline's Python); their
        # model rows meet in the batcher, so this bounds how many such requests can share a batch
        self.pipeline_pool = concurrent.futures.ThreadPoolExecutor(min(self.settings.max_concurrent_requests,
                                                                       PIPELINE_WORKERS),
                                                                   thread_name_prefix="ernie-m-fast-pipeline")

    def load(self) -> None:
        """Load the model, start the model thread, warm up; on failure record it and call on_load_failure."""
        try:
            started = time.perf_counter()
            engine = Engine(self.settings)
            batcher = Batcher(engine.run_batch, self.settings.max_batch_tokens,
                                          self.settings.max_batch_requests, self.metrics)
            engine.run_batch("embed", engine.encode(["warm-up"], truncate=True))  # lazy init before traffic
            if engine.pipeline is not None:
                engine.pipeline.attach(row_runner(batcher, self.loop))
            self.batcher = batcher.start()
            self.engine = engine
            logger.info("model loaded: %s task=%s device=%s dtype=%s in %.1fs", self.settings.model, engine.task,
                        engine.device, engine.dtype, time.perf_counter() - started)
        except BaseException as exc:  # reported, then the server exits non-zero
            self.load_error = exc
            logger.error("could not load the model %s: %s", self.settings.model, exc)
            if self.on_load_failure is not None:
                self.on_load_failure(exc)
            if not self.load_in_background:
                raise

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop(timeout=self.settings.graceful_timeout)
        for pool in (self.tokenize_pool, self.pipeline_pool):
            if pool is not None:
                pool.shutdown(wait=False)


def _json(body, status: int = 200) -> Response:
    return Response(json_bytes(body), status_code=status, media_type="application/json")


def _error_response(error: errors.ApiError) -> Response:
    return Response(error.body(), status_code=error.status, media_type="application/json")


class AdmissionGate:
    """Pure ASGI middleware: auth, payload limit, draining, in-flight limit; metrics and access log."""

    def __init__(self, app, state: ServingState):
        self.app = app
        self.state = state
        key = state.settings.api_key
        self._expected_auth = f"Bearer {key}".encode() if key else None

    def _refusal(self, route: str, headers: dict) -> Optional[errors.ApiError]:
        s = self.state
        if self._expected_auth is not None and route in PROTECTED_ROUTES:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected_auth):
                return errors.ApiError(401, errors.UNAUTHORIZED, "missing or wrong API key (Authorization: Bearer KEY)")
        if s.draining and route != "/metrics":
            return errors.draining()
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > s.settings.payload_limit):
            return errors.ApiError(413, errors.VALIDATION,
                                   f"request body over the payload limit of {s.settings.payload_limit} bytes")
        if route in INFERENCE_ROUTES and s.in_flight >= s.settings.max_concurrent_requests:
            return errors.overloaded(s.settings.max_concurrent_requests)
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        s = self.state
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in ROUTES else "other"
        headers = dict(scope["headers"])
        status = [500]

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        refusal = self._refusal(route, headers)
        if refusal is None and b"content-length" not in headers and scope["method"] in ("POST", "PUT"):
            receive, refusal = await self._buffer_chunked_body(receive)
        inference = refusal is None and route in INFERENCE_ROUTES
        tracked = refusal is None and route not in UNTRACKED_ROUTES
        s.in_flight += inference
        s.tracked += tracked
        s.admitted_total += tracked
        try:
            if refusal is not None:
                await _error_response(refusal)(scope, receive, send_and_record)
            else:
                await self.app(scope, receive, send_and_record)
        finally:
            s.in_flight -= inference
            s.tracked -= tracked
            s.completed_total += tracked
            elapsed = time.perf_counter() - started
            if s.metrics is not None:
                s.metrics.observe_request(route, status[0], elapsed)
            access_logger.info("%s %s %d %.2fms", scope["method"], path, status[0], elapsed * 1e3,
                               extra={"method": scope["method"], "path": path, "status": status[0],
                                      "duration_ms": round(elapsed * 1e3, 3)})

    async def _buffer_chunked_body(self, receive):
        """A body without Content-Length (chunked): read it here, within the payload limit."""
        limit = self.state.settings.payload_limit
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return receive, errors.ApiError(422, errors.VALIDATION, "the client closed the request")
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return receive, errors.ApiError(413, errors.VALIDATION,
                                                f"request body over the payload limit of {limit} bytes")
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        if err.get("type") == "json_invalid":
            return f"invalid JSON at character {err['loc'][-1]}: {err.get('ctx', {}).get('error', 'decode error')}"
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request body"


def _texts(inputs, limit: int) -> tuple[list, bool]:
    """(list of inputs, whether the request sent a single one); empty and oversized lists refused."""
    if isinstance(inputs, str):
        return [inputs], True
    if not inputs:
        raise errors.empty_inputs()
    if len(inputs) > limit:
        raise errors.too_many_inputs(len(inputs), limit)
    return list(inputs), False


def _predict_inputs(inputs, limit: int) -> tuple[list, bool]:
    """TEI's /predict inputs: "a", ["a"] or ["a", "b"] (one input), or [["a"], ["a", "b"], ...] (a batch)."""
    if isinstance(inputs, str):
        return [inputs], True
    if not inputs:
        raise errors.empty_inputs()
    if isinstance(inputs[0], str):
        if len(inputs) > 2:
            raise errors.ApiError(422, errors.VALIDATION, "a single input is a text or a pair [text, text_pair]; "
                                                          "send a batch as [[text], [text, text_pair], ...]")
        return [inputs[0] if len(inputs) == 1 else (inputs[0], inputs[1])], True
    if len(inputs) > limit:
        raise errors.too_many_inputs(len(inputs), limit)
    items = []
    for item in inputs:
        if len(item) not in (1, 2):
            raise errors.ApiError(422, errors.VALIDATION, "each batch item is [text] or [text, text_pair]")
        items.append(item[0] if len(item) == 1 else (item[0], item[1]))
    return items, False


MAX_SCHEMA_DEPTH = 8  # UIE schemas are entity -> relation -> attribute: a few levels


def check_schema(schema, depth: int = 0) -> None:
    """A UIE schema: a label, a list of labels / {label: sub-schema}, or {label: sub-schema}; bounded depth."""
    if depth > MAX_SCHEMA_DEPTH:
        raise errors.ApiError(422, errors.VALIDATION, f"schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
    if isinstance(schema, str):
        if not schema:
            raise errors.ApiError(422, errors.VALIDATION, "schema labels must be non-empty strings")
    elif isinstance(schema, list):
        if not schema:
            raise errors.ApiError(422, errors.VALIDATION, "schema lists must not be empty")
        for node in schema:
            check_schema(node, depth + 1)
    elif isinstance(schema, dict):
        if not schema:
            raise errors.ApiError(422, errors.VALIDATION, "schema objects must not be empty")
        for label, sub in schema.items():
            check_schema(label, depth + 1)
            check_schema(sub, depth + 1)
    else:
        raise errors.ApiError(422, errors.VALIDATION, f"schema nodes are strings, lists or objects, "
                                                      f"not {type(schema).__name__}")


def _refuse_prompt(prompt_name: Optional[str]) -> None:
    if prompt_name is not None:  # TEI's sentence-transformers prompts; ErnieM checkpoints define none
        raise errors.ApiError(422, errors.VALIDATION, "prompt_name is not supported: no prompts are configured")


def create_app(settings: ServerSettings, load_in_background: bool = True) -> FastAPI:
    """The server's ASGI app. `load_in_background`: answer 503 while the model loads (the CLI) rather
    than finishing the load before the lifespan starts (Ray Serve, whose replicas report ready then)."""
    state = ServingState(settings, load_in_background)

    @asynccontextmanager
    async def lifespan(app):
        state.start()
        if load_in_background:
            threading.Thread(target=state.load, name="ernie-m-fast-load", daemon=True).start()
        else:
            await asyncio.get_running_loop().run_in_executor(None, state.load)
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(title="ernie_m_fast server", description="ErnieM served in text-embeddings-inference's API",
                  lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.serving = state
    app.add_middleware(AdmissionGate, state=state)

    @app.exception_handler(errors.ApiError)
    async def api_error(request, exc: errors.ApiError):
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request, exc: RequestValidationError):
        return _error_response(errors.ApiError(422, errors.VALIDATION, _validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. invalid UTF-8)
            return _error_response(errors.ApiError(422, errors.VALIDATION, f"malformed request body: {exc.detail}"))
        kind = errors.NOT_FOUND if exc.status_code in (404, 405) else errors.VALIDATION
        return _error_response(errors.ApiError(exc.status_code, kind, str(exc.detail)))

    error_docs = {code: {"model": schemas.ErrorResponse} for code in (401, 413, 422, 424, 429, 503)}

    @app.get("/health", responses={503: {"model": schemas.ErrorResponse}})
    async def health():
        """200 once the model is loaded, 503 while loading or draining."""
        if state.load_error is not None:
            raise errors.ApiError(503, errors.UNHEALTHY, f"the model failed to load: {state.load_error}")
        state.ready_engine()
        return Response(status_code=200)

    @app.get("/info")
    async def info():
        return _json(state.ready_engine().info())

    @app.get("/metrics", response_class=Response)
    async def metrics():
        if state.metrics is None:
            raise errors.loading()
        if state.batcher is not None:
            state.metrics.queue_size.set(state.batcher.queue_size)
        state.metrics.in_flight.set(state.in_flight)
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.post("/embed", responses={200: {"model": schemas.EmbedResponse}, **error_docs})
    async def embed(request: schemas.EmbedRequest):
        engine = state.ready_engine()
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        _refuse_prompt(request.prompt_name)
        if request.dimensions is not None and request.dimensions > engine.model.config.hidden_size:
            raise errors.ApiError(422, errors.VALIDATION, f"dimensions {request.dimensions} exceeds the "
                                                          f"embedding size {engine.model.config.hidden_size}")
        rows = await state.infer("embed", engine, texts, request)
        body = [postprocess_embedding(row, request.normalize, request.dimensions) for row in rows]
        state.metrics.inputs.labels("/embed").inc(len(texts))
        return _json(body)

    @app.post("/predict", responses={200: {"model": schemas.PredictResponse}, **error_docs})
    async def predict(request: schemas.PredictRequest):
        engine = state.ready_engine()
        if engine.task != "predict":
            raise errors.wrong_task("/predict", engine.task, "sequence-classification")
        items, single = _predict_inputs(request.inputs, settings.max_client_batch_size)
        rows = await state.infer("predict", engine, items, request)
        body = [postprocess_scores(row, engine.id2label, request.raw_scores) for row in rows]
        state.metrics.inputs.labels("/predict").inc(len(items))
        return _json(body[0] if single else body)

    @app.post("/tokenize", responses={200: {"model": schemas.TokenizeResponse}, **error_docs})
    async def tokenize(request: schemas.TokenizeRequest):
        engine = state.ready_engine()
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        _refuse_prompt(request.prompt_name)
        body = await state.tokenize(texts, engine.tokens, texts, request.add_special_tokens)
        state.metrics.inputs.labels("/tokenize").inc(len(texts))
        return _json(body)

    async def run_pipeline(route: str, needs: str, texts: list, **task_args):
        engine = state.ready_engine()
        if engine.pipeline is None or engine.pipeline.task != needs:
            raise errors.wrong_task(route, engine.task, needs)

        def call():  # on a pipeline thread; the model rows go through the batcher
            try:
                return engine.pipeline(texts, **task_args)
            except (ValueError, TypeError) as exc:  # the pipeline refused these arguments
                raise errors.ApiError(422, errors.VALIDATION, str(exc)) from exc

        results = await asyncio.get_running_loop().run_in_executor(state.pipeline_pool, call)
        state.metrics.inputs.labels(route).inc(len(texts))
        return _json(results)

    @app.post("/extract", responses=error_docs)
    async def extract(request: schemas.ExtractRequest):
        """UIE-M information extraction (an information-extraction checkpoint): one result per input,
        PaddleNLP Taskflow's shape ({label: [{text, start, end, probability, relations}]})."""
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        check_schema(request.schema_)
        return await run_pipeline("/extract", "information-extraction", texts, schema=request.schema_,
                                  position_prob=request.position_prob, schema_lang=request.schema_lang)

    @app.post("/token-classify", responses=error_docs)
    async def token_classify(request: schemas.TokenClassifyRequest):
        """Entities per input (a token-classification checkpoint), transformers' token-classification
        shape: [{entity | entity_group, score, word, start, end}] with character offsets."""
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        return await run_pipeline("/token-classify", "token-classification", texts,
                                  aggregation_strategy=request.aggregation_strategy,
                                  ignore_labels=request.ignore_labels)

    return app

"""The HTTP API: a FastAPI app in text-embeddings-inference's shapes, on the batcher and the engine.

    POST /embed           {inputs, truncate, truncation_direction, normalize, dimensions} -> [[float]]
    POST /predict         {inputs, truncate, truncation_direction, raw_scores} -> [{score, label}] | [[...]]
    POST /embed_all       {inputs, truncate, truncation_direction} -> [[[float]]], every token's hidden state
    POST /v1/embeddings   OpenAI's {input, encoding_format, dimensions} -> {object, data, model, usage}
    POST /rerank          {query, texts, truncate, raw_scores, return_text} -> [{index, score, text}] (one-label)
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
import base64
import concurrent.futures
import hmac
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
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

OPENAI_ROUTES = frozenset({"/v1/embeddings", "/embeddings"})  # OpenAI's bodies and error shape, as TEI serves them
INFERENCE_ROUTES = OPENAI_ROUTES | {"/embed", "/embed_all", "/predict", "/rerank", "/tokenize", "/extract",
                                    "/token-classify"}
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

    async def infer(self, kind: str, engine: Engine, items: list, truncate: Optional[bool],
                    direction: str = "right") -> tuple[list, int]:
        """Tokenize `items` (truncating as the request says; None: --auto-truncate), then one result each
        from the batcher. Returns (results, the inputs' tokens)."""
        truncate = self.settings.auto_truncate if truncate is None else truncate
        ids = await self.tokenize(items, engine.encode, items, truncate, direction.lower())
        return await self.batcher.run(kind, ids), sum(len(row) for row in ids)

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


def _error_response(error: errors.ApiError, path: str = "") -> Response:
    body = error.openai_body() if path in OPENAI_ROUTES else error.body()
    return Response(body, status_code=error.status, media_type="application/json")


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
                await _error_response(refusal, path)(scope, receive, send_and_record)
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
        return _error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request, exc: RequestValidationError):
        return _error_response(errors.ApiError(422, errors.VALIDATION, _validation_message(exc)), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. invalid UTF-8)
            return _error_response(errors.ApiError(422, errors.VALIDATION, f"malformed request body: {exc.detail}"),
                                   request.url.path)
        kind = errors.NOT_FOUND if exc.status_code in (404, 405) else errors.VALIDATION
        return _error_response(errors.ApiError(exc.status_code, kind, str(exc.detail)), request.url.path)

    error_statuses = (401, 413, 422, 424, 429, 503)  # what an inference route can answer besides 200
    error_docs = {code: {"model": schemas.ErrorResponse} for code in error_statuses}

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

    def check_dimensions(engine: Engine, dimensions: Optional[int]) -> None:
        if dimensions is not None and dimensions > engine.model.config.hidden_size:
            raise errors.ApiError(422, errors.VALIDATION, f"dimensions {dimensions} exceeds the "
                                                          f"embedding size {engine.model.config.hidden_size}")

    @app.post("/embed", responses={200: {"model": schemas.EmbedResponse}, **error_docs})
    async def embed(request: schemas.EmbedRequest):
        engine = state.ready_engine()
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        _refuse_prompt(request.prompt_name)
        check_dimensions(engine, request.dimensions)
        rows, _ = await state.infer("embed", engine, texts, request.truncate, request.truncation_direction)
        body = [postprocess_embedding(row, request.normalize, request.dimensions) for row in rows]
        state.metrics.inputs.labels("/embed").inc(len(texts))
        return _json(body)

    @app.post("/embed_all", responses={200: {"model": schemas.EmbedAllResponse}, **error_docs})
    async def embed_all(request: schemas.EmbedAllRequest):
        """Every token's last hidden state, special tokens included, unpooled and unnormalised (TEI's
        /embed_all): per input, [tokens][hidden]."""
        engine = state.ready_engine()
        texts, _ = _texts(request.inputs, settings.max_client_batch_size)
        _refuse_prompt(request.prompt_name)
        rows, _ = await state.infer("embed_all", engine, texts, request.truncate, request.truncation_direction)
        state.metrics.inputs.labels("/embed_all").inc(len(texts))
        return _json(rows)

    openai_error_docs = {code: {"model": schemas.OpenAIErrorResponse} for code in error_statuses}

    @app.post("/v1/embeddings", responses={200: {"model": schemas.OpenAIEmbeddingsResponse}, **openai_error_docs})
    async def openai_embeddings(request: schemas.OpenAIEmbeddingsRequest, http_request: Request):
        """OpenAI-compatible embeddings (TEI's /v1/embeddings, also at /embeddings): pooled as /embed,
        always L2-normalised, truncated when --auto-truncate is set; `base64` is the little-endian
        float32 bytes. Errors here are OpenAI-shaped: {message, code, type}."""
        engine = state.ready_engine()
        texts, _ = _texts(request.input, settings.max_client_batch_size)
        check_dimensions(engine, request.dimensions)
        rows, tokens = await state.infer("embed", engine, texts, None)
        data = []
        for index, row in enumerate(rows):
            vector = postprocess_embedding(row, True, request.dimensions)
            if request.encoding_format == "base64":
                vector = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
            data.append({"object": "embedding", "embedding": vector, "index": index})
        state.metrics.inputs.labels(http_request.url.path).inc(len(texts))
        return _json({"object": "list", "data": data, "model": settings.model,
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    app.add_api_route("/embeddings", openai_embeddings, methods=["POST"], include_in_schema=False)

    @app.post("/predict", responses={200: {"model": schemas.PredictResponse}, **error_docs})
    async def predict(request: schemas.PredictRequest):
        engine = state.ready_engine()
        if engine.task != "predict":
            raise errors.wrong_task("/predict", engine.task, "sequence-classification")
        items, single = _predict_inputs(request.inputs, settings.max_client_batch_size)
        rows, _ = await state.infer("predict", engine, items, request.truncate, request.truncation_direction)
        body = [postprocess_scores(row, engine.id2label, request.raw_scores) for row in rows]
        state.metrics.inputs.labels("/predict").inc(len(items))
        return _json(body[0] if single else body)

    @app.post("/rerank", responses={200: {"model": schemas.RerankResponse}, **error_docs})
    async def rerank(request: schemas.RerankRequest):
        """TEI's /rerank, on a one-label sequence-classification checkpoint: each (query, text) pair's score
        (sigmoid of the logit unless raw_scores), highest first: [{index, score, text?}]."""
        engine = state.ready_engine()
        if not engine.is_reranker:
            raise errors.ApiError(424, errors.BACKEND, "model is not a re-ranker model: /rerank needs a "
                                                       "sequence-classification checkpoint with one label")
        if not request.texts:
            raise errors.ApiError(422, errors.EMPTY, "`texts` cannot be empty")
        if len(request.texts) > settings.max_client_batch_size:
            raise errors.too_many_inputs(len(request.texts), settings.max_client_batch_size)
        pairs = [(request.query, text) for text in request.texts]
        rows, _ = await state.infer("predict", engine, pairs, request.truncate, request.truncation_direction)
        ranks = []
        for index, (row, text) in enumerate(zip(rows, request.texts)):
            score = postprocess_scores(row, engine.id2label, request.raw_scores)[0]["score"]
            ranks.append({"index": index, "score": score, **({"text": text} if request.return_text else {})})
        ranks.sort(key=lambda rank: -rank["score"])  # stable: equal scores keep input order
        state.metrics.inputs.labels("/rerank").inc(len(pairs))
        return _json(ranks)

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

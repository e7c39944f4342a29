"""The server's one error shape, TEI's: `{"error": message, "error_type": kind}` with a status code.

Status codes follow the issue's table (TEI's where it agrees): 413 too many inputs, an over-long
input without truncation, or a body over the payload limit; 422 a malformed body; 424 the model
failed; 429 the queue is full; 401 a missing or wrong API key; 503 loading or draining.
"""

from __future__ import annotations

import json

VALIDATION = "validation"  # 422 / 413
EMPTY = "empty"  # 422: an empty input list
TOKENIZER = "tokenizer"  # 422: the tokenizer refused the input
OVERLOADED = "overloaded"  # 429
UNHEALTHY = "unhealthy"  # 503: loading or draining
BACKEND = "backend"  # 424: the model failed, or the loaded model has no such head
UNAUTHORIZED = "unauthorized"  # 401
NOT_FOUND = "not_found"  # 404 / 405


class ApiError(Exception):
    """An error answered to the client as-is."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> bytes:
        return error_body(self.message, self.error_type)

    def openai_body(self) -> bytes:
        """The error shape of the OpenAI-compatible route (TEI's `{message, code, type}` there)."""
        return json.dumps({"message": self.message, "code": self.status, "type": self.error_type}).encode()


def error_body(message: str, error_type: str) -> bytes:
    return json.dumps({"error": message, "error_type": error_type}).encode()


def too_many_inputs(count: int, limit: int) -> ApiError:
    return ApiError(413, VALIDATION, f"batch size {count} > maximum allowed batch size {limit}")


def empty_inputs() -> ApiError:
    return ApiError(422, EMPTY, "`inputs` cannot be empty")


def input_too_long(tokens: int, limit: int) -> ApiError:
    return ApiError(413, VALIDATION, f"`inputs` must have less than {limit} tokens. Given: {tokens}; "
                                     "pass \"truncate\": true to truncate it")


def overloaded(limit: int) -> ApiError:
    return ApiError(429, OVERLOADED, f"Model is overloaded: {limit} requests already in flight")


def loading() -> ApiError:
    return ApiError(503, UNHEALTHY, "the model is still loading")


def draining() -> ApiError:
    return ApiError(503, UNHEALTHY, "the server is shutting down")


def wrong_task(route: str, task: str, needs: str) -> ApiError:
    return ApiError(424, BACKEND, f"{route} needs a {needs} model; this server runs task {task!r}")

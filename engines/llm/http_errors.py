"""What an HTTP LLM API's failure means for the fallback chain.

A rejected request (400, 413, 422, other 4xx) is the request's fault: the
caller gets ``LlmRequestError`` and no other backend is tried. A rejected key
(401, 403) is ``LlmAuthError``; rate limits (429), timeouts, missing models
(404) and server errors (5xx) are ``BackendError``: the chain fails over. The
error text quotes the server's own message (from OpenAI's and Anthropic's
error bodies) and never the request headers, so no key reaches a log.
"""

from __future__ import annotations

import json
from typing import Any

from engines.backend import BackendError
from engines.fallback_chain import RequestError, TransientBackendError

_MAX_MESSAGE = 300
_FAILOVER_4XX = frozenset({404, 408, 409, 425, 429})


class LlmRequestError(RequestError):
    """The API rejected the request itself (bad input): no failover."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LlmHttpError(BackendError):
    """The API failed or refused to serve (rate limit, overload, server error)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LlmAuthError(LlmHttpError):
    """The API rejected the key (wrong, expired or missing permission)."""


class LlmTimeout(LlmHttpError):
    """The API did not connect, answer or send the next event in time."""


class LlmBusy(LlmHttpError, TransientBackendError):
    """Rate limited or overloaded (429, 503, 529): try the next backend, keep this one."""


class LlmProtocolError(LlmHttpError):
    """The API answered with something that is not the protocol (malformed SSE or JSON)."""


def error_message(body: str) -> str:
    """The human message inside an error body (OpenAI, Anthropic, Gemini shapes), else the body."""
    text = body.strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return _clip(text) or "no error message"
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("type")
            kind = error.get("type") or error.get("code") or error.get("status")
            if message:
                suffix = f" ({kind})" if kind and kind != message else ""
                return _clip(f"{message}{suffix}")
        elif isinstance(error, str):
            return _clip(error)
        detail = data.get("detail") or data.get("message")
        if isinstance(detail, str):
            return _clip(detail)
    return _clip(text)


def error_for_status(status: int, body: str, source: str, *, key_env: str | None = None) -> Exception:
    """The exception for an HTTP error ``status`` from ``source`` (e.g. "openai chat")."""
    message = error_message(body)
    if status in (401, 403):
        where = f" (the key in ${key_env})" if key_env else ""
        return LlmAuthError(f"{source}: the API key was rejected{where}: HTTP {status}: {message}", status)
    if status == 429:
        return LlmBusy(f"{source}: rate limited (HTTP 429): {message}", status)
    if status in (503, 529):
        return LlmBusy(f"{source}: overloaded (HTTP {status}): {message}", status)
    if status >= 500 or status in _FAILOVER_4XX:
        return LlmHttpError(f"{source}: HTTP {status}: {message}", status)
    if 400 <= status < 500:
        return LlmRequestError(f"{source}: request rejected (HTTP {status}): {message}", status)
    return LlmHttpError(f"{source}: unexpected HTTP {status}: {message}", status)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."

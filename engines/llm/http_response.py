"""Open, read and finish one HTTP response of an LLM API, with explicit deadlines.

``open_response`` connects within ``connect_timeout_s``, waits for the
headers within ``idle_timeout_s`` and turns an HTTP error status into the
exception ``http_errors`` prescribes (its body is read for the server's
message). ``finish_response`` returns a fully read connection to the pool or
closes one that is not; closing is what tells a server a cancelled stream
is no longer wanted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from engines.llm.http_errors import LlmHttpError, LlmProtocolError, LlmTimeout, error_for_status

_DRAIN_S = 0.25  # a well-behaved server ends the body right after the last event


async def open_response(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    source: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float,
    idle_timeout_s: float,
    key_env: str | None = None,
) -> aiohttp.ClientResponse:
    """The response to ``method url`` with a success status (the caller must finish it)."""
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s)
    try:
        async with asyncio.timeout(connect_timeout_s + idle_timeout_s):
            response = await session.request(method, url, json=body, headers=dict(headers or {}), timeout=timeout)
    except TimeoutError:
        raise LlmTimeout(f"{source}: no response from {url} within {connect_timeout_s + idle_timeout_s:g} s") from None
    except aiohttp.ServerTimeoutError:
        raise LlmTimeout(f"{source}: cannot connect to {url} within {connect_timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        raise LlmHttpError(f"{source}: cannot connect to {url}: {exc.os_error or exc}") from None
    except aiohttp.ClientError as exc:
        raise LlmHttpError(f"{source}: {method} {url} failed: {exc or type(exc).__name__}") from None
    if response.status >= 400:
        try:
            async with asyncio.timeout(idle_timeout_s):
                text = await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError):
            text = ""
        finally:
            response.release()
        raise error_for_status(response.status, text, source, key_env=key_env)
    return response


async def read_text(response: aiohttp.ClientResponse, *, source: str, idle_timeout_s: float) -> str:
    try:
        async with asyncio.timeout(idle_timeout_s):
            return await response.text(errors="replace")
    except TimeoutError:
        raise LlmTimeout(f"{source}: the response body did not arrive within {idle_timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise LlmHttpError(f"{source}: reading the response failed: {exc or type(exc).__name__}") from None


async def read_json(response: aiohttp.ClientResponse, *, source: str, idle_timeout_s: float) -> Any:
    text = await read_text(response, source=source, idle_timeout_s=idle_timeout_s)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise LlmProtocolError(f"{source}: the response is not JSON: {text[:120]!r}") from None


async def finish_response(response: aiohttp.ClientResponse, *, complete: bool) -> None:
    """Release a completely read response for reuse; close anything else (stops the server's work)."""
    if not complete:
        response.close()
        return
    try:
        async with asyncio.timeout(_DRAIN_S):
            while await response.content.readany():
                pass
    except (TimeoutError, aiohttp.ClientError):
        response.close()
        return
    except BaseException:
        response.close()
        raise
    response.release()

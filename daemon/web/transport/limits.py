"""How much a request may send and what the responses say about the server.

Every request body is at most ``MAX_BODY_BYTES`` (the app's
``client_max_size``); one announcing more by its ``Content-Length`` is refused
before a byte of it is read, and its connection closed so the rest is not
drained either. Routes that stream a large upload themselves (the voice
samples: after login, counting bytes as they come) are named in ``streamed``
and check their own limit. Responses carry no ``Server`` header (aiohttp's
default names the Python and aiohttp versions), and over TLS an HSTS header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

# Forms and JSON of the page: the login form is a few hundred bytes; the largest, the personas settings form,
# carries every persona's prompts, and Cyrillic text triples in URL encoding (a 5000-letter prompt: 30 KB).
MAX_BODY_BYTES = 256 * 1024
HSTS = "max-age=31536000"  # a year; no includeSubDomains: the box does not own its parent domain

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def too_large(limit_bytes: int, what: str = "request") -> web.Response:
    """413 with a readable limit; the connection is closed so the unread rest is not taken in."""
    size = f"{limit_bytes // (1024 * 1024)} MB" if limit_bytes >= 1024 * 1024 else f"{limit_bytes // 1024} KB"
    response = web.json_response({"error": f"The {what} is too large: at most {size}."}, status=413)
    response.force_close()
    return response


def body_limit_middleware(limit_bytes: int, streamed: frozenset[str]) -> Callable[[web.Request, Handler],
                                                                                   Awaitable[web.StreamResponse]]:
    """Refuse a body announced larger than ``limit_bytes`` unread, except on the ``streamed`` paths."""

    @web.middleware
    async def limit_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limit_bytes and request.path not in streamed:
            return too_large(limit_bytes)
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past client_max_size while read
            return too_large(limit_bytes)

    return limit_body


async def transport_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` (every response, raised ones too): no ``Server`` header, HSTS over TLS.

    aiohttp sets its version string as ``Server`` before this runs, so it is removed here.
    """
    response.headers.popall(hdrs.SERVER, None)
    if request.secure:
        response.headers.setdefault(hdrs.STRICT_TRANSPORT_SECURITY, HSTS)

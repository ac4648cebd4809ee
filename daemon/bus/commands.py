"""Commands arriving on ``cmd/<verb>`` and the replies they get.

A handler takes the decoded JSON object and returns a JSON-able result or
raises ``CommandError``. Whatever arrives, the requester gets a reply
(``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message"}}``)
and the daemon keeps running.

A streaming handler (``register(..., streaming=True)``) also gets ``emit``:
each call sends ``{"ok": true, "partial": ...}`` to the same response topic
with the same correlation data before the final reply (a chat answer arriving
token by token). A verb may have its own time limit (``timeout_s``).

Nothing a peer publishes escapes: a payload over ``MAX_PAYLOAD_BYTES`` (the
bus contract's limit), one that is not a JSON object, or an unknown verb is
answered ``bad_payload`` / ``unknown_command`` and logged once per peer (the
requester's response topic, else the command's topic) per interval, not once
per message (``channels/peer_log.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.bus_contract.limits import MAX_PAYLOAD_BYTES, over_limit
from channels.bus_contract.topics import command
from channels.peer_json import BadJson, parse_peer_json
from channels.peer_log import BadPayloadLog

log = logging.getLogger("secretary.bus.commands")

CommandHandler = Callable[[dict[str, Any]], Awaitable[Any]]
Emit = Callable[[Any], None]
StreamingHandler = Callable[[dict[str, Any], Emit], Awaitable[Any]]

PEER_FAULTS = frozenset({"bad_payload", "unknown_command"})  # the requester's fault: logged through BadPayloadLog


class CommandError(Exception):
    """A handler's way to refuse a command with a reason the requester can read."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_reply(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def is_peer_fault(reply: dict[str, Any]) -> bool:
    """Whether ``reply`` refuses what the requester sent (already logged, rate-limited, by the router)."""
    return not reply.get("ok") and reply.get("error", {}).get("code") in PEER_FAULTS


class CommandRouter:
    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler | StreamingHandler] = {}
        self._streaming: set[str] = set()
        self._timeouts: dict[str, float] = {}
        self.bad_payloads = BadPayloadLog(log, "command")

    def register(
        self, verb: str, handler: CommandHandler | StreamingHandler, *, streaming: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        self._handlers[verb] = handler
        self._streaming.discard(verb)
        if streaming:
            self._streaming.add(verb)
        self._timeouts.pop(verb, None)
        if timeout_s is not None:
            self._timeouts[verb] = timeout_s

    def unregister(self, verb: str) -> None:
        self._handlers.pop(verb, None)
        self._streaming.discard(verb)
        self._timeouts.pop(verb, None)

    @property
    def verbs(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(
        self, verb: str, payload: bytes, timeout_s: float, emit: Emit | None = None, *, peer: str | None = None,
    ) -> dict[str, Any]:
        """The reply to ``cmd/<verb>`` with ``payload``; ``peer`` names the requester in the log (its response topic)."""
        handler = self._handlers.get(verb)
        if handler is None:
            known = ", ".join(self.verbs) or "none"
            return self._refuse(peer or command("<unknown verb>"), verb, "unknown_command",
                                f"unknown command {verb!r}; known: {known}")
        args, problem = _arguments(payload)
        if problem is not None:
            return self._refuse(peer or command(verb), verb, "bad_payload", problem)
        timeout_s = self._timeouts.get(verb, timeout_s)
        try:
            if verb in self._streaming:
                call = handler(args, emit if emit is not None else _drop)  # type: ignore[call-arg]
            else:
                call = handler(args)  # type: ignore[call-arg]
            async with asyncio.timeout(timeout_s):
                result = await call
        except CommandError as exc:
            if exc.code in PEER_FAULTS:  # a handler found the arguments bad: logged like the router's own refusals
                return self._refuse(peer or command(verb), verb, exc.code, exc.message)
            return error_reply(exc.code, exc.message)
        except TimeoutError:
            return error_reply("timeout", f"command {verb!r} took longer than {timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the bus
            log.exception("command handler failed", extra={"verb": verb})
            return error_reply("internal", f"{type(exc).__name__}: {exc}")
        return {"ok": True, "result": result}

    def _refuse(self, peer: str, verb: str, code: str, message: str) -> dict[str, Any]:
        self.bad_payloads.bad(peer, f"{command(verb)}: {code}: {message}")
        return error_reply(code, message)


def _arguments(payload: bytes) -> tuple[dict[str, Any], str | None]:
    """The command's arguments, or why the payload is refused."""
    too_big = over_limit(payload, MAX_PAYLOAD_BYTES)
    if too_big is not None:
        return {}, too_big
    try:
        args = parse_peer_json(payload) if payload.strip() else {}
    except BadJson as exc:
        return {}, f"payload is {exc}"
    if not isinstance(args, dict):
        return {}, f"payload must be a JSON object, got {type(args).__name__}"
    return args, None


def _drop(_: Any) -> None:
    """``emit`` for a requester that gave no response topic: partial replies go nowhere."""

"""Voicemail hand-offs: each recorded message reaches the box as ``cmd/notify/callback_request``.

Twilio keeps the recording; the box is told who called and where the
recording is. A hand-off is written to ``data_dir/spool/twilio`` before it
is sent and deleted once the box accepted it, so a broker outage or a restart
of the channel loses nothing: undelivered hand-offs are retried with backoff
until the box answers. One the box refuses (``invalid``) is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.verbs import CALLBACK_REQUEST

log = logging.getLogger("secretary.channels.twilio")

REQUEST_TIMEOUT_S = 10.0
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class HandoffBus(Protocol):
    connected: asyncio.Event

    async def request(self, verb: str, args: dict[str, Any] | None = None, *, timeout_s: float = 10.0) -> Any: ...


class Handoffs:
    def __init__(self, spool: Path, bus: HandoffBus) -> None:
        self.spool = spool
        self.bus = bus
        self.delivered = 0
        self._wake = asyncio.Event()

    async def submit(self, key: str, args: dict[str, Any]) -> None:
        """Keep ``args`` on disk and wake the sender; returns once the hand-off cannot be lost."""
        name = f"{_UNSAFE.sub('_', key)[:80]}-{uuid.uuid4().hex[:8]}.json"
        await asyncio.to_thread(_write_atomically, self.spool / name, json.dumps(args, ensure_ascii=False))
        self._wake.set()

    async def run(self) -> None:
        """Deliver what is spooled, oldest first, forever; cancel to stop."""
        await asyncio.to_thread(self.spool.mkdir, parents=True, exist_ok=True)
        while True:
            self._wake.clear()
            paths = await asyncio.to_thread(_oldest_first, self.spool)
            if not paths:
                await self._wake.wait()
                continue
            for path in paths:
                await self._deliver(path)

    async def _deliver(self, path: Path) -> None:
        try:
            args = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("unreadable voicemail hand-off set aside", extra={"file": path.name, "error": str(exc)})
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".bad"))
            return
        delay = RETRY_INITIAL_S
        while True:
            try:
                result = await self.bus.request(CALLBACK_REQUEST, args, timeout_s=REQUEST_TIMEOUT_S)
            except CommandFailed as exc:
                log.error("the box refused a voicemail hand-off", extra={"code": exc.code, "error": exc.message,
                                                                        "session": args.get("session")})
                break
            except (BusUnavailable, TimeoutError) as exc:
                log.warning("voicemail hand-off waits for the box", extra={"error": str(exc), "retry_s": delay})
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self.bus.connected.wait()
                await asyncio.sleep(min(delay, RETRY_INITIAL_S))
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self.delivered += 1
            request_id = result.get("id") if isinstance(result, dict) else None
            log.info("voicemail handed to the box", extra={"id": request_id, "session": args.get("session")})
            break
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _oldest_first(spool: Path) -> list[Path]:
    found = []
    for path in spool.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_mtime, path.name, path))
    return [path for _, _, path in sorted(found)]

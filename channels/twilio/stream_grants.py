"""A media stream is accepted only for a call a signed ``/twilio/voice`` opened moments ago, and only once.

The upgrade's ``X-Twilio-Signature`` covers the ``wss://`` URL alone: it is
the same for every call and can be replayed, and the ``start`` message after
it is not signed at all. So when a signed ``/twilio/voice`` answers with
``<Connect><Stream>``, it records a pending stream (CallSid, From, To, when)
and puts into the TwiML's ``<Parameter>``s the numbers, the time and an HMAC
over all four, keyed with a random key of this process. Twilio hands those
back in ``start.customParameters``. ``redeem`` accepts a ``start`` only when
the HMAC matches its ``callSid`` and parameters, the call is pending, the
grant is the call's newest, at most ``GRANT_TTL_S`` old and not used yet; the
caller and called numbers then come from the signed grant, never from the
unsigned message. The table is small and bounded; a grant dies with the
process (a stream that starts after a restart is refused, and the caller gets
the ``<Connect>`` action's voicemail).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

GRANT_TTL_S: Final = 60.0  # Twilio opens the stream within a second or two of our TwiML
MAX_PENDING: Final = 256  # calls answered but not streaming yet; the oldest go first
MAX_REMEMBERED: Final = 1024  # streamed calls remembered, so a replay says so in the log
CALLER: Final = "caller"  # the <Parameter> names, back in start.customParameters
CALLED: Final = "called"
ISSUED: Final = "issued"
GRANT: Final = "grant"


class GrantRefused(Exception):
    """The ``start`` is not one a signed ``/twilio/voice`` asked for (or no longer is)."""


@dataclass(frozen=True)
class StreamGrant:
    call_sid: str
    caller: str | None
    called: str | None
    issued: str  # the issuing clock's reading, as it travels through the TwiML
    issued_at: float


class StreamGrants:
    """The pending streams of this process: ``issue`` on a signed ``/twilio/voice``, ``redeem`` on ``start``."""

    def __init__(
        self, ttl_s: float = GRANT_TTL_S, max_pending: int = MAX_PENDING, *, key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self._key = key if key is not None else secrets.token_bytes(32)
        self._clock = clock
        self._pending: OrderedDict[str, StreamGrant] = OrderedDict()
        self._redeemed: OrderedDict[str, None] = OrderedDict()

    def issue(self, call_sid: str, caller: str | None, called: str | None) -> dict[str, str]:
        """Record a pending stream for the call; the ``<Parameter>``s its TwiML carries to ``start``."""
        now = self._clock()
        self._evict(now)
        issued = f"{now:.6f}"
        self._pending.pop(call_sid, None)  # a repeated /voice for the call: only the newest grant counts
        self._pending[call_sid] = StreamGrant(call_sid, caller or None, called or None, issued, now)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        return {CALLER: caller or "", CALLED: called or "", ISSUED: issued,
                GRANT: self._mac(call_sid, caller or "", called or "", issued)}

    def redeem(self, call_sid: str, parameters: Any) -> StreamGrant:
        """The grant for ``start``'s ``callSid`` and ``customParameters``, used up; ``GrantRefused`` says why not."""
        params: Mapping[str, Any] = parameters if isinstance(parameters, Mapping) else {}
        values = [params.get(name) for name in (CALLER, CALLED, ISSUED, GRANT)]
        if not all(isinstance(v, str) for v in values) or not values[2] or not values[3]:
            raise GrantRefused("start carries no stream grant: the call was not answered by a signed /twilio/voice")
        caller, called, issued, mac = (str(v) for v in values)
        if not hmac.compare_digest(mac.encode(), self._mac(call_sid, caller, called, issued).encode()):
            raise GrantRefused("the stream grant does not match the call (forged, or callSid or numbers changed)")
        now = self._clock()
        if call_sid in self._redeemed:
            raise GrantRefused("the call has streamed already: a replayed start")
        pending = self._pending.get(call_sid)
        if pending is None or pending.issued != issued:
            reason = ("it expired (or newer calls pushed it out)" if pending is None
                      else "a newer /twilio/voice replaced it")
            raise GrantRefused(f"the stream grant is not pending: {reason}")
        if now - pending.issued_at > self.ttl_s:
            del self._pending[call_sid]
            raise GrantRefused(f"the stream grant expired: start came {now - pending.issued_at:.1f} s after "
                               f"/twilio/voice (at most {self.ttl_s:g} s)")
        del self._pending[call_sid]
        self._redeemed[call_sid] = None
        while len(self._redeemed) > MAX_REMEMBERED:
            self._redeemed.popitem(last=False)
        return pending

    def __len__(self) -> int:
        return len(self._pending)

    def _mac(self, call_sid: str, caller: str, called: str, issued: str) -> str:
        message = json.dumps([call_sid, caller, called, issued], ensure_ascii=True).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _evict(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if now - oldest.issued_at <= self.ttl_s:
                break
            self._pending.popitem(last=False)

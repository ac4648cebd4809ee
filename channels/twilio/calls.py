"""What the Twilio channel remembers about a call, by CallSid: bounded, and forgotten when the call ends.

A call is remembered from its first webhook (or its media stream) until
Twilio's status callback says it is over. Status callbacks are configured per
number in the Twilio console and may be missing, so the registry is also
bounded in size and age (no Twilio call lasts over four hours). Chat history
for the ``<Gather>`` conversation keeps the last few exchanges only.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from config.schema import SecretaryConfig

MAX_CALLS = 500
MAX_AGE_S = 4 * 3600 + 600
HISTORY_TURNS = 10

StreamOutcome = Literal["ended", "refused", "failed"]


class LiveStream(Protocol):
    """A media stream bridged to the daemon's line; ``end`` hangs the line up and closes the stream."""

    def end(self, reason: str) -> None: ...


def persona_for(config: SecretaryConfig, called: str | None) -> str:
    """The persona that answers a Twilio number: ``channels.twilio.numbers`` or the default ``call.persona``."""
    numbers = config.channels.twilio.numbers
    return numbers.get(called or "", config.call.persona)


@dataclass
class TwilioCall:
    sid: str
    persona: str
    caller: str | None
    called: str | None
    created: float
    turns: int = 0
    history: deque[dict[str, str]] = field(default_factory=deque)
    stream: LiveStream | None = None
    stream_outcome: StreamOutcome | None = None  # how the media stream ended, once it has

    def add_exchange(self, heard: str, answer: str) -> None:
        self.turns += 1
        self.history.append({"role": "user", "text": heard})
        self.history.append({"role": "assistant", "text": answer})
        while len(self.history) > 2 * HISTORY_TURNS:
            self.history.popleft()

    def messages(self) -> list[dict[str, str]]:
        return list(self.history)


class CallRegistry:
    def __init__(
        self, max_calls: int = MAX_CALLS, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_calls = max_calls
        self.max_age_s = max_age_s
        self._clock = clock
        self._calls: OrderedDict[str, TwilioCall] = OrderedDict()

    def open(self, sid: str, *, persona: str, caller: str | None, called: str | None) -> TwilioCall:
        """The call ``sid``, remembered from now on if it is new."""
        call = self._calls.get(sid)
        if call is None:
            self._evict()
            call = self._calls[sid] = TwilioCall(sid, persona, caller, called, self._clock())
        return call

    def get(self, sid: str) -> TwilioCall | None:
        return self._calls.get(sid)

    def drop(self, sid: str) -> TwilioCall | None:
        return self._calls.pop(sid, None)

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, sid: object) -> bool:
        return sid in self._calls

    def _evict(self) -> None:
        cutoff = self._clock() - self.max_age_s
        while self._calls:
            sid, oldest = next(iter(self._calls.items()))
            if oldest.created >= cutoff and len(self._calls) < self.max_calls:
                break
            del self._calls[sid]

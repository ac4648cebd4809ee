"""Final result codes, the response of one AT command, and the AT errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class FinalKind(StrEnum):
    OK = "OK"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"


#: Finals that only call-control commands (ATA, ATD, ATH) can receive; for
#: any other command they are unsolicited (a call went away meanwhile).
CALL_FINALS: Final = frozenset({FinalKind.NO_CARRIER, FinalKind.BUSY, FinalKind.NO_ANSWER, FinalKind.NO_DIALTONE})

_PLAIN: Final = {kind.value: kind for kind in FinalKind if not kind.value.startswith("+")}
_EXTENDED: Final = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class FinalResult:
    kind: FinalKind
    code: int | None = None
    text: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is FinalKind.OK

    def __str__(self) -> str:
        if self.kind in (FinalKind.CME_ERROR, FinalKind.CMS_ERROR):
            detail = self.text if self.text is not None else str(self.code)
            return f"{self.kind.value}: {detail}"
        return self.kind.value


def parse_final(line: str) -> FinalResult | None:
    """The final result code this line is, or None."""
    kind = _PLAIN.get(line)
    if kind is not None:
        return FinalResult(kind)
    match = _EXTENDED.match(line)
    if match is None:
        return None
    kind = FinalKind.CME_ERROR if match.group(1) == "CME" else FinalKind.CMS_ERROR
    detail = match.group(2).strip()
    if detail.isdigit():
        return FinalResult(kind, code=int(detail))
    return FinalResult(kind, text=detail or None)


@dataclass(frozen=True, slots=True)
class AtResponse:
    """What one command got: its information lines and its final result."""

    command: str
    lines: tuple[str, ...]
    final: FinalResult
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.final.ok

    def prefixed(self, prefix: str) -> list[str]:
        """Payloads of the lines that start with ``prefix`` (e.g. ``+CSQ:``), stripped."""
        return [line[len(prefix) :].strip() for line in self.lines if line.startswith(prefix)]

    def first(self, prefix: str) -> str | None:
        found = self.prefixed(prefix)
        return found[0] if found else None

    def raise_for_error(self) -> AtResponse:
        if not self.ok:
            raise AtCommandError(self)
        return self


class AtError(Exception):
    """Base of everything the AT channel raises."""


class AtCommandError(AtError):
    """The modem answered with an error final result."""

    def __init__(self, response: AtResponse) -> None:
        super().__init__(f"{response.command!r} -> {response.final}")
        self.response = response

    @property
    def final(self) -> FinalResult:
        return self.response.final


class AtTimeoutError(AtError, TimeoutError):
    def __init__(self, command: str, timeout_s: float) -> None:
        super().__init__(f"{command!r}: no final result within {timeout_s:g} s")
        self.command = command
        self.timeout_s = timeout_s


class AtChannelClosedError(AtError, ConnectionError):
    """The port went away (EOF, read error, unplug) or was closed."""


__all__ = [
    "CALL_FINALS",
    "AtChannelClosedError",
    "AtCommandError",
    "AtError",
    "AtResponse",
    "AtTimeoutError",
    "FinalKind",
    "FinalResult",
    "parse_final",
]

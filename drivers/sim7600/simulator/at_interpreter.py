"""Host bytes -> AT commands (or, after the ``> `` prompt, SMS text up to Ctrl-Z)."""

from __future__ import annotations

from dataclasses import dataclass

CTRL_Z = 0x1A
ESC = 0x1B
MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class CommandLine:
    text: str


@dataclass(frozen=True, slots=True)
class TextEntry:
    text: str


@dataclass(frozen=True, slots=True)
class TextAborted:
    pass


InputEvent = CommandLine | TextEntry | TextAborted


class AtInputInterpreter:
    """Pull-based, so a command can switch to text mode before later bytes are read."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.text_mode = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_LINE and not self.text_mode:
            cut = max(self._buffer.rfind(b"\r"), self._buffer.rfind(b"\n"))
            del self._buffer[: cut + 1 if cut >= 0 else len(self._buffer)]

    def reset(self) -> None:
        self._buffer.clear()
        self.text_mode = False

    def next_event(self) -> InputEvent | None:
        buffer = self._buffer
        if self.text_mode:
            for i, byte in enumerate(buffer):
                if byte in (CTRL_Z, ESC):
                    text = bytes(buffer[:i]).decode("utf-8", errors="replace")
                    del buffer[: i + 1]
                    self.text_mode = False
                    return TextEntry(text) if byte == CTRL_Z else TextAborted()
            return None
        while True:
            cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                return None
            end = min(ends)
            line = bytes(buffer[:end]).decode("ascii", errors="replace").strip()
            del buffer[: end + 1]
            if line[:2].upper() == "AT":
                return CommandLine(line)

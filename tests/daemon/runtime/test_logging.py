"""Structured logging: one JSON object per line off a terminal, levels from config."""

from __future__ import annotations

import io
import json
import logging

from config.schema import LogConfig
from daemon.runtime.logging_setup import configure_logging


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_with_fields_when_not_a_tty() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(level="info", levels={"bus": "debug"}), stream)
    logging.getLogger("secretary.bus").debug("mqtt connected", extra={"broker": "127.0.0.1:1883", "queued": 3})
    logging.getLogger("secretary.modem").debug("hidden at info")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("secretary.app").error("multi\nline", exc_info=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # one line per event, even with a traceback
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "mqtt connected" and first["broker"] == "127.0.0.1:1883" and first["queued"] == 3
    assert first["level"] == "debug" and first["logger"] == "secretary.bus" and first["ts"].endswith("+00:00")
    assert second["msg"] == "multi\nline" and "ValueError: boom" in second["exc"]


def test_text_on_a_terminal() -> None:
    stream = FakeTty()
    configure_logging(LogConfig(level="warning"), stream)
    logging.getLogger("secretary.supervisor").warning("service restarting", extra={"service": "bus", "delay_s": 0.5})
    logging.getLogger("secretary.supervisor").info("not shown")
    text = stream.getvalue()
    assert "WARNING secretary.supervisor: service restarting  [service=bus delay_s=0.5]" in text
    assert "not shown" not in text
    configure_logging(LogConfig(), io.StringIO())

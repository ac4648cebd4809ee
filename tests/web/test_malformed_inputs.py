"""Malformed input to the box gets a clear 4xx (or ``bad_payload`` on the bus), never a 500, and loses nothing.

Through the whole daemon: its real aiohttp page, real SQLite, the simulator,
and a real broker for ``cmd/simulator/speak``.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import aiohttp
import numpy as np

from channels.bus_contract.verbs import SIMULATOR_SPEAK
from daemon.modem.modem_service import SIMULATOR_SPEECH_DIR
from daemon.tools.demo_caller import RECORDINGS_DIR
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import CSRF_HEADER
from tests.daemon.web.web_daemon import web_daemon
from tests.support.mqtt_watch import MqttWatch


def speech_wav(seconds: float = 5.0, rate: int = 16_000) -> bytes:
    """A 16-bit mono WAV that passes the voice sample check (loud enough, long enough)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(tone.tobytes())
    return out.getvalue()


def chunk_past_the_end(wav: bytes) -> bytes:
    """``wav`` with a LIST chunk before its audio whose size says 4 GB: the stdlib reader raises RuntimeError."""
    junk = b"LIST" + struct.pack("<I", 0xFFFFFFF0) + b"INFO"
    return wav[:36] + junk + wav[36:]


async def test_the_calls_page_refuses_a_page_or_date_it_cannot_search(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with web_daemon(broker, tmp_path) as box, box.client() as http:
        await box.login(http)
        cases = {
            "page=" + str(10**30): "page must be a whole number from 0 to 1000000",
            "page=-1": "page must be a whole number",
            "page=1e3": "page must be a whole number",
            "from=99999-01-01": "From must be a date like 2026-11-24",
            "to=9999-12-31": "To must be a day from 1970-01-01 to 9999-12-30",
            "from=0001-01-01": "From must be a day from 1970-01-01",
        }
        for query, error in cases.items():
            async with http.get(f"{box.url}/calls?{query}") as response:
                text = await response.text()
                assert response.status == 400, (query, response.status, text[:300])
                assert error in text, (query, text[:2000])
                assert "<form" in text  # the search form, to correct it
        for query in ("", "page=0", "page=", "page=3&from=2026-01-01&to=9999-12-30", "number=%2B7916"):
            async with http.get(f"{box.url}/calls?{query}") as response:
                assert response.status == 200, query


async def test_voice_preview_and_upload_refuse_malformed_input_clearly(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with web_daemon(broker, tmp_path) as box, box.client() as http:
        csrf = await box.login(http)
        headers = {CSRF_HEADER: csrf, "Origin": box.url, "Content-Type": "application/json"}
        for body, error in ((b"[" * 5000, "nested too deeply"), (b'{"persona": "lidia", "te', "not JSON"),
                            (b'\xff\xfe{}', "not UTF-8"), (b'["lidia"]', "expected JSON {persona, text}")):
            async with http.post(f"{box.url}/api/voices/preview", data=body, headers=headers) as response:
                answer = await response.json()
                assert response.status == 400, (body[:20], response.status, answer)
                assert error in answer["error"], answer

        good = speech_wav()
        form = aiohttp.FormData()
        form.add_field("voice", "alice")
        form.add_field("samples", chunk_past_the_end(good), filename="broken.wav", content_type="audio/wav")
        form.add_field("samples", good, filename="good.wav", content_type="audio/wav")
        async with http.post(f"{box.url}/voices/upload", data=form, headers={CSRF_HEADER: csrf, "Origin": box.url},
                             allow_redirects=False) as response:
            text = await response.text()
            assert response.status in (200, 400), (response.status, text[:500])  # a page, not a 500
            assert "broken.wav" in text and "damaged or cut short" in text, text[:3000]
        kept = list((box.data_dir / "voices" / "alice").glob("*.wav"))
        assert len(kept) == 1  # the good file of the same upload is kept


async def test_simulator_speak_reads_only_the_caller_recordings(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with web_daemon(broker, tmp_path) as box, MqttWatch(broker, broker.topics("status")) as owner:
        own = box.data_dir / SIMULATOR_SPEECH_DIR
        own.mkdir(parents=True, exist_ok=True)
        bundled = RECORDINGS_DIR / "en" / "01_introduction.wav"
        (own / "mine.wav").write_bytes(bundled.read_bytes())
        (own / "link.wav").symlink_to(bundled)
        (own / "secret.wav").symlink_to("/etc/passwd")
        (own / "broken.wav").write_bytes(chunk_past_the_end(bundled.read_bytes()))
        command = broker.topics(f"cmd/{SIMULATOR_SPEAK}")
        refused = {
            "/etc/passwd": "naming a WAV under",
            str(own / "secret.wav"): "symlink",
            str(own / "link.wav"): "symlink",
            f"{own}/../config.yaml": "without '..'",
            str(RECORDINGS_DIR / "en" / ".." / "en" / "01_introduction.wav"): "without '..'",
            "calls/x.wav": "absolute path",
            str(own / "missing.wav"): "no WAV file",
            str(own / "broken.wav"): "not an 8 kHz mono 16-bit WAV",
        }
        for wav, reason in refused.items():
            reply = await owner.request(command, f'{{"wav": "{wav}"}}'.encode())
            assert reply["ok"] is False and reply["error"]["code"] == "bad_payload", (wav, reply)
            assert reason in reply["error"]["message"], (wav, reply)
        for wav in (bundled, own / "mine.wav"):
            reply = await owner.request(command, f'{{"wav": "{wav}"}}'.encode())
            assert reply["ok"] is True and reply["result"]["seconds"] > 0.5, (wav, reply)

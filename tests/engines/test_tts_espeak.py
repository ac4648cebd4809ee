"""espeak-ng (Debian) as the last-resort voice: real Russian and English audio, per sentence, errors reported."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.espeak_backend import EspeakBackend
from engines.tts.interface import AudioChunk, SynthesisRequest
from engines.tts.settings import EspeakSettings

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt install espeak-ng)")

RUSSIAN = "Спасибо за звонок. Доктор Смит сейчас занят, я попрошу его перезвонить вам завтра утром."


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def _speak(backend: EspeakBackend, text: str, language: str, preset: str | None = None) -> list[AudioChunk]:
    return [c async for c in backend.synthesize(SynthesisRequest(text, language, preset=preset))]


async def test_russian_is_audible_and_split_by_sentence() -> None:
    backend = EspeakBackend(EspeakSettings())
    await backend.load()
    try:
        assert backend.languages == {"en", "ru"} and "1.5" in backend.model
        chunks = await _speak(backend, RUSSIAN, "ru")
        assert [c.text for c in chunks] == ["Спасибо за звонок.", "Доктор Смит сейчас занят, я попрошу его перезвонить вам завтра утром."]
        assert all(c.sample_rate == 22050 and _rms(c.samples) > 500 for c in chunks)
        seconds = sum(c.duration_s for c in chunks)
        assert 3.0 < seconds < 12.0
        english = await _speak(backend, "Thank you for calling. Goodbye.", "en")
        assert len(english) == 2 and _rms(np.concatenate([c.samples for c in english])) > 500
        slower = sum(c.duration_s for c in await _speak(backend, RUSSIAN, "ru", preset="calm"))
        assert slower > seconds * 1.05  # a preset's speed reaches espeak's rate
        with pytest.raises(RequestError, match="espeak-ng has no voice for language 'de'"):
            await _speak(backend, "Hallo.", "de")
    finally:
        await backend.close()


async def test_a_missing_voice_or_program_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="voice 'xx-nowhere' for 'ru' does not work: .*does not exist"):
        await EspeakBackend(EspeakSettings(voices={"ru": "xx-nowhere"})).load()
    with pytest.raises(BackendUnavailable, match="'espeak-ng-missing' is not installed"):
        await EspeakBackend(EspeakSettings(executable="espeak-ng-missing")).load()


async def test_a_hung_espeak_is_killed_at_the_timeout(tmp_path: Path) -> None:
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'eSpeak NG fake'; exit 0; fi\nexec sleep 30\n")
    fake.chmod(0o755)
    backend = EspeakBackend(EspeakSettings(executable=str(fake), voices={"ru": "ru"}, timeout_s=0.3))
    with pytest.raises(BackendUnavailable, match="did not finish within 0.3 s"):
        await backend.load()


async def test_cancelling_a_stream_leaves_no_process_behind(tmp_path: Path) -> None:
    backend = EspeakBackend(EspeakSettings())
    await backend.load()
    text = " ".join(f"Предложение номер {n}." for n in range(40))
    task = asyncio.create_task(_speak(backend, text, "ru"))
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(child for child in Path("/proc").glob("[0-9]*") if _is_espeak_child(child))


def _is_espeak_child(proc: Path) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    parent = int(stat.rsplit(")", 1)[1].split()[1])
    return parent == os.getpid() and b"espeak-ng" in cmdline


async def test_garbage_from_espeak_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'fake'; exit 0; fi\ncat >/dev/null; echo 'not a wav'\n")
    fake.chmod(0o755)
    backend = EspeakBackend(EspeakSettings(executable=str(fake), voices={"ru": "ru"}))
    with pytest.raises(BackendUnavailable, match="no usable audio"):
        await backend.load()

"""Callers understand RHVoice over the phone: Russian speech -> 8 kHz A-law line -> whisper-base, word error rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from engines.tts.interface import SynthesisRequest
from engines.tts.rhvoice_backend import RhvoiceBackend
from engines.tts.rhvoice_library import RhvoiceLibraryError, load_library
from engines.tts.settings import RhvoiceSettings
from tests.engines.tts_roundtrip import RUSSIAN_SENTENCES, load_whisper_base, transcribe
from tests.support.phone_band import phone_call
from tests.support.word_error import word_errors

try:
    load_library()
    MISSING = ""
except RhvoiceLibraryError as exc:
    MISSING = str(exc)


@pytest.mark.skipif(bool(MISSING), reason=f"librhvoice5 is absent on this machine: {MISSING}")
async def test_whisper_base_understands_irina_phone_call(models_dir: Path) -> None:
    backend = RhvoiceBackend(RhvoiceSettings())
    await backend.load()
    try:
        spoken = []
        for sentence in RUSSIAN_SENTENCES:
            chunks = [c async for c in backend.synthesize(SynthesisRequest(sentence, "ru"))]
            spoken.append((sentence, np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate))
    finally:
        await backend.close()
    model = await asyncio.to_thread(load_whisper_base, models_dir)
    rates = []
    for sentence, samples, rate in spoken:
        heard = await asyncio.to_thread(transcribe, model, phone_call(samples, rate), "ru")
        rates.append(word_errors(sentence, heard, "ru").rate)
        print(f"\n  {rates[-1]:.0%}  {sentence!r} -> {heard!r}")
    mean = sum(rates) / len(rates)
    print(f"rhvoice irina over 8 kHz A-law, whisper-base: WER {mean:.1%} on {len(rates)} sentences")
    assert mean < 0.25

"""The Russian demo call over the simulator: Гуля (RHVoice Irina) takes Иван Петров's message from the bundled lines.

The caller's lines are RHVoice Aleksandr (``daemon/tools/demo_caller/ru``), heard by
whisper-base through the real CPU engines; the scripted take-a-message dialogue must
fill every slot exactly. That the secretary spoke with RHVoice is checked on the audio
she put on the line: her greeting in ``secretary.wav`` is the waveform RHVoice's
Irina makes of the same request (and not the caller's voice, Aleksandr).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from daemon.tools.demo_caller import caller_script
from daemon.voices.persona_voice import PersonaVoice
from drivers.audio import LINE_RATE, StreamResampler, read_wav
from engines.text_normalize import normalize
from engines.tts.interface import SynthesisRequest
from engines.tts.rhvoice_backend import RhvoiceBackend
from engines.tts.rhvoice_library import RhvoiceLibraryError, load_library
from engines.tts.settings import RhvoiceSettings

from .call_harness import box_config, call_box

pytestmark = pytest.mark.slow

EXPECTED_MESSAGE = {"name": "Иван Петров", "reason": "по поводу счета за доставку", "callback_number": "89161234567"}
SAME_VOICE = 0.9  # normalised correlation of a line's greeting with the same synthesis (measured ~0.99)
OTHER_VOICE = 0.3  # ... and with another voice's (measured well under 0.1)


try:
    load_library()
    RHVOICE_MISSING = ""
except RhvoiceLibraryError as exc:
    RHVOICE_MISSING = str(exc)


async def rhvoice_at_line_rate(request: SynthesisRequest, voice: str) -> np.ndarray:
    """``request`` spoken by RHVoice's ``voice`` as the box would (quality min), resampled to 8 kHz float."""
    backend = RhvoiceBackend(RhvoiceSettings(voices={"ru": voice}, offered=(voice,)))
    await backend.load()
    try:
        chunks = [chunk async for chunk in backend.synthesize(request)]
    finally:
        await backend.close()
    resampler = StreamResampler(chunks[0].sample_rate, LINE_RATE)
    return np.concatenate([resampler.process(np.concatenate([c.samples for c in chunks])), resampler.flush()])


def best_correlation(track: np.ndarray, reference: np.ndarray, max_lag: int = LINE_RATE) -> float:
    """The highest normalised correlation of ``reference`` with ``track`` starting within ``max_lag`` samples."""
    x = track[: len(reference) + max_lag].astype(np.float64)
    ref = reference.astype(np.float64)
    size = 1 << (len(x) + len(ref)).bit_length()
    dots = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(ref, size)), size)[: len(x) - len(ref) + 1]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    window = energy[len(ref) :] - energy[: len(x) - len(ref) + 1]
    scores = dots / (np.sqrt(np.maximum(window, 1e-12)) * np.linalg.norm(ref))
    return float(scores.max())


@pytest.mark.skipif(bool(RHVOICE_MISSING), reason=f"librhvoice5 is absent on this machine: {RHVOICE_MISSING}")
async def test_russian_caller_leaves_a_message_with_every_slot_right(tmp_path: Path) -> None:
    config = box_config(tmp_path / "data", call__persona="gulya")
    persona = config.personas["gulya"]
    lines = caller_script("ru")
    async with call_box(config) as box:
        call_id = await box.ring()
        greeting = await box.wait_secretary_turns(1, 30)
        assert greeting["text"] == persona.greeting
        for count, line in enumerate(lines[:3], start=2):
            await box.sim.caller_speaks(line.wav)
            await box.wait_secretary_turns(count, 90)
        ended = await box.wait_ended(90)
    print(json.dumps(box.events(), ensure_ascii=False, indent=1))
    assert ended["call_id"] == call_id
    assert ended["outcome"] == "message_taken", ended
    assert ended["message"] == EXPECTED_MESSAGE
    heard = [e["text"] for e in box.events("utterance") if e["role"] == "caller"]
    assert heard[0].startswith("Здравствуйте, это Иван Петров"), heard

    record = tmp_path / "data" / "calls" / call_id
    reply_audio, rate = read_wav(record / "secretary.wav")
    assert rate == LINE_RATE
    request = PersonaVoice.of(persona).request(normalize(persona.greeting, "ru"))
    irina = best_correlation(reply_audio, await rhvoice_at_line_rate(request, "irina"))
    aleksandr = best_correlation(reply_audio, await rhvoice_at_line_rate(request, "aleksandr"))
    print(f"greeting vs RHVoice irina {irina:.3f}, vs aleksandr {aleksandr:.3f}")
    assert irina > SAME_VOICE, "the secretary's greeting is not RHVoice Irina's"
    assert aleksandr < OTHER_VOICE

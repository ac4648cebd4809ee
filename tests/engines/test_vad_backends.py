"""Silero (ONNX, no torch) and WebRTC VAD backends: rates, frames, sessions, errors, factory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendError, BackendUnavailable
from engines.vad.backend_factory import VAD_SETTINGS, build_vad_backend
from engines.vad.interface import UnsupportedSampleRate, VadBackend
from engines.vad.silero_backend import SileroBackend, SileroSettings
from engines.vad.webrtc_backend import WebRtcBackend, WebRtcSettings
from tests.engines import speech_samples as samples

REPO = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def webrtc() -> Iterator[WebRtcBackend]:
    backend = WebRtcBackend(WebRtcSettings())
    asyncio.run(backend.load())
    yield backend
    asyncio.run(backend.close())


def probabilities(backend: VadBackend, pcm: np.ndarray, rate: int) -> np.ndarray:
    session = backend.open(rate)
    n = session.frame_samples
    return np.array([session.probability(pcm[at : at + n]) for at in range(0, len(pcm) - n + 1, n)])


def test_silero_runs_from_the_wheels_onnx_without_torch(silero: SileroBackend) -> None:
    assert silero.model.endswith("silero_vad/data/silero_vad.onnx")
    assert (silero.open(16_000).frame_samples, silero.open(8_000).frame_samples) == (512, 256)
    # in a fresh interpreter (this one may hold other tests' imports)
    code = (
        "import asyncio, sys\n"
        "from engines.vad.silero_backend import SileroBackend, SileroSettings\n"
        "b = SileroBackend(SileroSettings()); asyncio.run(b.load()); asyncio.run(b.warm_up())\n"
        "print(sorted(m for m in ('torch', 'silero_vad') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("rate", [8_000, 16_000])
@pytest.mark.parametrize("kind", ["silero", "webrtc"])
def test_speech_scores_high_and_line_noise_low(kind: str, rate: int, silero: SileroBackend, webrtc: WebRtcBackend) -> None:
    backend = {"silero": silero, "webrtc": webrtc}[kind]
    clean = samples.speech(samples.APPOINTMENT, rate)
    onset, offset = samples.speech_bounds(clean, rate)
    line = samples.padded(clean, rate, 1.0, 1.0)
    p = probabilities(backend, line, rate)
    frame_s = backend.open(rate).frame_s
    times = np.arange(len(p)) * frame_s
    assert ((0.0 <= p) & (p <= 1.0)).all()
    silence = p[times + frame_s < 0.9]
    speech = p[(times > 1.0 + onset + 0.3) & (times < 1.0 + offset - 0.3)]
    assert silence.mean() < 0.1, silence.mean()
    assert speech.mean() > 0.6, speech.mean()
    if kind == "webrtc":
        assert set(np.unique(p)) <= {0.0, 1.0}


def test_sessions_keep_their_own_state_and_reset_forgets(silero: SileroBackend) -> None:
    rate = 16_000
    a_audio = samples.padded(samples.speech(samples.SHORT, rate), rate, 0.3, 0.3)
    b_audio = samples.quiet_noise(rate, len(a_audio) / rate, dbfs=-30, seed=5)
    alone_a = probabilities(silero, a_audio, rate)
    alone_b = probabilities(silero, b_audio, rate)

    a, b = silero.open(rate), silero.open(rate)
    n = a.frame_samples
    together_a, together_b = [], []
    for at in range(0, len(a_audio) - n + 1, n):  # interleaved, frame by frame
        together_a.append(a.probability(a_audio[at : at + n]))
        together_b.append(b.probability(b_audio[at : at + n]))
    np.testing.assert_allclose(together_a, alone_a, atol=1e-6)
    np.testing.assert_allclose(together_b, alone_b, atol=1e-6)

    a.reset()
    again = [a.probability(a_audio[at : at + n]) for at in range(0, len(a_audio) - n + 1, n)]
    np.testing.assert_allclose(again, alone_a, atol=1e-6)


def test_unsupported_sample_rates_are_refused_clearly(silero: SileroBackend, webrtc: WebRtcBackend) -> None:
    with pytest.raises(UnsupportedSampleRate, match="silero VAD runs at 8000, 16000 Hz, not 44100 Hz"):
        silero.open(44_100)
    with pytest.raises(UnsupportedSampleRate, match="webrtc VAD runs at 8000, 16000, 32000, 48000 Hz, not 11025 Hz"):
        webrtc.open(11_025)
    assert webrtc.open(48_000).frame_samples == 960


def test_wrong_frames_are_refused_clearly(silero: SileroBackend, webrtc: WebRtcBackend) -> None:
    with pytest.raises(ValueError, match="frames of 256 samples, got 160"):
        silero.open(8_000).probability(np.zeros(160, dtype=np.float32))
    with pytest.raises(ValueError, match=r"silero VAD takes 1-D float32 audio .*got int16 \(512,\)"):
        silero.open(16_000).probability(np.zeros(512, dtype=np.int16))
    with pytest.raises(ValueError, match=r"webrtc VAD takes 1-D float32 audio .*got int16 \(320,\)"):
        webrtc.open(16_000).probability(np.zeros(320, dtype=np.int16))
    with pytest.raises(ValueError, match="frames of 320 samples, got 480"):
        webrtc.open(16_000).probability(np.zeros(480, dtype=np.float32))
    thirty = WebRtcBackend(WebRtcSettings(mode=3, frame_ms=30))
    asyncio.run(thirty.load())
    assert thirty.open(8_000).frame_samples == 240


async def test_loading_failures_and_use_before_load(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await SileroBackend(SileroSettings(model=str(tmp_path / "vad.onnx"))).load()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(BackendError, match="could not load"):
        await SileroBackend(SileroSettings(model=str(tmp_path / "junk.onnx"))).load()
    with pytest.raises(BackendError, match="not loaded"):
        SileroBackend(SileroSettings()).open(16_000)
    with pytest.raises(BackendError, match="not loaded"):
        WebRtcBackend(WebRtcSettings()).open(16_000)


def test_factory_and_settings() -> None:
    assert set(VAD_SETTINGS) == {"silero", "webrtc"}
    assert isinstance(build_vad_backend("silero"), SileroBackend)
    assert isinstance(build_vad_backend("webrtc", WebRtcSettings(mode=3)), WebRtcBackend)
    with pytest.raises(ValueError, match="unknown VAD backend kind 'pyannote'"):
        build_vad_backend("pyannote")
    with pytest.raises(TypeError, match="takes SileroSettings, not WebRtcSettings"):
        build_vad_backend("silero", WebRtcSettings())
    with pytest.raises(ValueError, match="mode must be 0, 1, 2 or 3"):
        WebRtcSettings(mode=4)
    with pytest.raises(ValueError, match="frame_ms must be 10, 20 or 30"):
        WebRtcSettings(frame_ms=25)
    with pytest.raises(ValueError, match="threads"):
        SileroSettings(threads=0)

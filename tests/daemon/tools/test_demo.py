"""`secretary demo` on embedded defaults: a whole call with the CPU engines, then a clean stop (English and Russian)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from config.loader import bundled_config_text, parse_config_text
from daemon.voices.persona_voice import PersonaVoice
from drivers.audio import LINE_RATE, StreamResampler, read_wav
from engines.text_normalize import normalize
from engines.tts.interface import SynthesisRequest
from engines.tts.rhvoice_backend import RhvoiceBackend
from engines.tts.rhvoice_library import RhvoiceLibraryError, load_library
from engines.tts.settings import RhvoiceSettings

REPO = Path(__file__).resolve().parents[3]


def private_brokers(parents: set[int]) -> set[str]:
    """The private mosquittos whose parent is one of ``parents`` (a leaked child of a gone process has pid 1)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"secretary-mqtt-" not in (proc / "cmdline").read_bytes():
                continue
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if parent in parents:
            found.add(proc.name)
    return found


try:
    load_library()
    RHVOICE_MISSING = ""
except RhvoiceLibraryError as exc:
    RHVOICE_MISSING = str(exc)


def run_demo_cli(data_dir: Path, cwd: Path, *args: str) -> tuple[str, str]:
    """``secretary demo --data-dir data_dir *args`` in a subprocess: (stdout, stderr); asserts it exited 0 and left no broker.

    Other tests running beside this one start private brokers of their own: only an orphan (parent 1, as a
    broker the demo left behind becomes) or one still owned by the demo's process counts.
    """
    with subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "demo", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    ) as demo:
        before = private_brokers({1})
        out, err = demo.communicate(timeout=580)
    assert demo.returncode == 0, out + err
    assert private_brokers({1, demo.pid}) <= before, "the demo's private mosquitto is still running"
    return out, err


def the_call_record(data_dir: Path) -> Path:
    calls = list((data_dir / "calls").iterdir())
    assert len(calls) == 1
    assert {"caller.wav", "secretary.wav", "transcript.json", "transcript.txt"} <= {p.name for p in calls[0].iterdir()}
    return calls[0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_places_a_whole_call_on_embedded_defaults(tmp_path: Path) -> None:
    out, _ = run_demo_cli(tmp_path / "data", tmp_path)
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "bus status online" in lines and "bus status offline" in lines
    assert any(line.startswith("bus call/event answered") for line in lines)
    assert any(line.startswith("bus call/event ended") and '"outcome": "message_taken"' in line for line in lines)
    assert "Caller : Hi, this is John Peters" in " ".join(lines)
    assert "greeting: first audio" in out and "voice-to-voice" in out
    the_call_record(tmp_path / "data")


SAME_VOICE = 0.9  # normalised correlation of a line's greeting with the same synthesis (measured ~0.97)
OTHER_VOICE = 0.3  # ... and with another voice's (measured ~0.06)


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


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(bool(RHVOICE_MISSING), reason=f"librhvoice5 is absent on this machine: {RHVOICE_MISSING}")
async def test_russian_demo_takes_ivan_petrovs_message_exactly_in_irinas_voice(tmp_path: Path) -> None:
    """The whole Russian demo: the message exactly, and the secretary's audio on the line is RHVoice Irina's."""
    out, _ = await asyncio.to_thread(run_demo_cli, tmp_path / "data", tmp_path, "--lang", "ru")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "persona gulya (ru)" in out
    assert "their voice: RHVoice aleksandr" in out  # the caller; the secretary speaks Irina
    assert "Secretary: Здравствуйте! Вы позвонили в офис Алекса Моргана, меня зовут Гуля." in " ".join(lines)
    assert any(line.startswith("bus call/event ended") and '"outcome": "message_taken"' in line for line in lines)
    message = json.loads(next(line for line in out.splitlines() if line.startswith("message: ")).removeprefix("message: "))
    assert message == {"name": "Иван Петров", "reason": "по поводу счета за доставку", "callback_number": "89161234567"}
    record = the_call_record(tmp_path / "data")
    transcript = json.loads((record / "transcript.json").read_text(encoding="utf-8"))
    assert transcript["persona"] == "gulya" and transcript["language"] == "ru"
    assert transcript["message"] == message

    # the secretary spoke RHVoice Irina (not the caller's Aleksandr): her greeting's waveform on the line
    persona = parse_config_text(bundled_config_text(), "embedded defaults").settings.personas["gulya"]
    reply_audio, rate = read_wav(record / "secretary.wav")
    assert rate == LINE_RATE
    request = PersonaVoice.of(persona).request(normalize(persona.greeting, "ru"))
    irina = best_correlation(reply_audio, await rhvoice_at_line_rate(request, "irina"))
    aleksandr = best_correlation(reply_audio, await rhvoice_at_line_rate(request, "aleksandr"))
    print(f"greeting vs RHVoice irina {irina:.3f}, vs aleksandr {aleksandr:.3f}")
    assert irina > SAME_VOICE, "the secretary's greeting is not RHVoice Irina's"
    assert aleksandr < OTHER_VOICE

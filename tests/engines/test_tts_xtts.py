"""XTTS v2: fallback to Piper wherever coqui-tts/CUDA are missing, the worker glue against coqui's API, and the real GPU run.

Here (no CUDA, no coqui-tts) the XTTS worker cannot load, so the chain must
serve Piper and say so. The worker's XTTS code is also run against a small
stand-in of the parts of torch and coqui-tts it calls (same names and
signatures as coqui-tts 0.2x: ``XttsConfig.load_json``, ``Xtts.init_from_config``,
``load_checkpoint``, ``get_conditioning_latents(audio_path=[...])``,
``inference_stream(...)``), which records the calls: it checks our side of the
contract (latents computed once and cached across restarts, presets and
sentences passed on, memory share set), not XTTS's audio. The real model runs
only in the ``gpu`` test, on a machine that has it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendUnavailable
from engines.engine_status import EngineState
from engines.fallback_chain import BackendSlot, RequestError
from engines.tts.backend_factory import build_tts_backend
from engines.tts.interface import SynthesisRequest, TtsBackend
from engines.tts.settings import EspeakSettings, PiperSettings, WorkerSettings, XttsSettings
from engines.tts.tts_engine import TtsEngine
from engines.tts.xtts_backend import XttsBackend


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


async def test_chain_serves_piper_and_says_why_when_xtts_cannot_load(tmp_path: Path) -> None:
    slots: list[BackendSlot[TtsBackend]] = [
        BackendSlot("xtts", lambda: build_tts_backend("xtts", XttsSettings(voices={"anna": ("voices/anna",)}), tmp_path)),
        BackendSlot("piper", lambda: build_tts_backend("piper", PiperSettings(), tmp_path)),
        BackendSlot("espeak", lambda: build_tts_backend("espeak", EspeakSettings(), tmp_path)),
    ]
    synthesizer = TtsEngine(slots, retry_initial_s=60)
    status = await synthesizer.start()
    try:
        assert status.state is EngineState.DEGRADED and status.backend == "piper"
        assert status.detail == "serving on fallback piper"
        assert len(status.failures) == 1 and status.failures[0].startswith("xtts: xtts: worker could not load: coqui-tts (XTTS) is not importable")
        # XTTS configured for en+ru: the languages stay on offer, served by the fallbacks
        assert synthesizer.languages == {"en", "ru"}
        english = [c async for c in synthesizer.synthesize(SynthesisRequest("Hello, how can I help?", "en", voice="anna", preset="warm"))]
        assert [c.text for c in english] == ["Hello, how can I help?"] and english[0].sample_rate == 22050
        russian = [c async for c in synthesizer.synthesize(SynthesisRequest("Здравствуйте!", "ru", voice="anna"))]
        assert [c.text for c in russian] == ["Здравствуйте!"] and _rms(russian[0].samples) > 500
        payload = synthesizer.status.as_payload()
        assert payload["state"] == "degraded" and payload["backend"] == "piper"
    finally:
        await synthesizer.close()


# -- the worker's XTTS code against a stand-in of torch + coqui-tts -------------------------------

_TORCH = '''
import numpy as np
calls = []
class device:
    def __init__(self, spec):
        self.type, _, index = spec.partition(":")
        self.index = int(index) if index else None
    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"
class Tensor:
    def __init__(self, array):
        self.array = np.asarray(array)
    def to(self, *_):
        return self
    def detach(self):
        return self
    def float(self):
        return Tensor(self.array.astype(np.float32))
    def cpu(self):
        return self
    def numpy(self):
        return self.array
def from_numpy(array):
    return Tensor(array)
class cuda:
    @staticmethod
    def is_available():
        return True
    @staticmethod
    def set_per_process_memory_fraction(fraction, index):
        calls.append(("memory_fraction", fraction, index))
    @staticmethod
    def empty_cache():
        pass
__version__ = "stand-in"
'''

_XTTS_CONFIG = '''
import json
class _Audio:
    output_sample_rate = 24000
class XttsConfig:
    def __init__(self):
        self.languages = []
        self.audio = _Audio()
        self.gpt_cond_len = 30
        self.gpt_cond_chunk_len = 4
        self.max_ref_len = 30
        self.sound_norm_refs = False
    def load_json(self, path):
        self.languages = json.load(open(path))["languages"]
'''

_XTTS_MODEL = '''
import json, os
import numpy as np
import torch
LOG = os.environ["XTTS_STANDIN_LOG"]
def log(*event):
    with open(LOG, "a") as f:
        f.write(json.dumps(event) + "\\n")
class _Tokenizer:
    char_limits = {"en": 250, "ru": 182}
class Xtts:
    def __init__(self, config):
        self.config = config
        self.tokenizer = _Tokenizer()
        self.speaker_manager = None
        self.device = "cuda"
    @staticmethod
    def init_from_config(config):
        return Xtts(config)
    def load_checkpoint(self, config, checkpoint_dir=None, eval=True, use_deepspeed=False):
        log("load_checkpoint", os.path.basename(checkpoint_dir), eval, use_deepspeed)
    def to(self, device):
        log("to", str(device))
        return self
    def get_conditioning_latents(self, audio_path, gpt_cond_len, gpt_cond_chunk_len, max_ref_length, sound_norm_refs):
        log("latents", [os.path.basename(p) for p in audio_path])
        return torch.Tensor(np.ones((1, 32, 1024))), torch.Tensor(np.ones((1, 512, 1)))
    def inference_stream(self, text, language, gpt_cond_latent, speaker_embedding, stream_chunk_size=20,
                         temperature=0.75, length_penalty=1.0, repetition_penalty=10.0, top_k=50, top_p=0.85,
                         speed=1.0, enable_text_splitting=False):
        assert gpt_cond_latent.array.shape == (1, 32, 1024) and speaker_embedding.array.shape == (1, 512, 1)
        log("stream", text, language, temperature, speed, repetition_penalty, top_k, top_p, enable_text_splitting)
        for n in range(2):
            yield torch.Tensor(0.3 * np.sin(np.arange(2400) / 7.0 + n))
'''


def _stand_in(root: Path) -> Path:
    files = {
        "torch/__init__.py": _TORCH,
        "TTS/__init__.py": "",
        "TTS/tts/__init__.py": "",
        "TTS/tts/configs/__init__.py": "",
        "TTS/tts/configs/xtts_config.py": _XTTS_CONFIG,
        "TTS/tts/models/__init__.py": "",
        "TTS/tts/models/xtts.py": _XTTS_MODEL,
    }
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def _checkpoint_and_voice(models_dir: Path) -> None:
    checkpoint = models_dir / "xtts_v2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text(json.dumps({"languages": ["en", "ru", "de"]}))
    (checkpoint / "model.pth").write_bytes(b"\0" * 1024)
    (checkpoint / "vocab.json").write_text("{}")
    voice = models_dir / "voices" / "anna"
    voice.mkdir(parents=True)
    for n in range(3):
        (voice / f"ref{n}.wav").write_bytes(bytes([n]) * 64)


async def test_xtts_worker_glue_caches_latents_and_passes_presets(tmp_path: Path) -> None:
    stand_in = _stand_in(tmp_path / "stand_in")
    log = tmp_path / "calls.jsonl"
    _checkpoint_and_voice(tmp_path)
    settings = XttsSettings(
        voices={"anna": ("voices/anna",)},
        gpu_memory_fraction=0.25,
        presets={"whisper": {"temperature": 0.3, "speed": 0.8, "repetition_penalty": 4.0, "top_k": 10, "top_p": 0.5}},
        worker=WorkerSettings(env={"PYTHONPATH": str(stand_in), "XTTS_STANDIN_LOG": str(log)}),
    )

    async def run_once() -> tuple[dict[str, object], list]:  # type: ignore[type-arg]
        backend = build_tts_backend("xtts", settings, tmp_path)
        assert isinstance(backend, XttsBackend)
        await backend.load()
        try:
            chunks = [c async for c in backend.synthesize(SynthesisRequest("Hello there. Bye now.", "en", preset="calm"))]
            custom = [c async for c in backend.synthesize(SynthesisRequest("Привет.", "ru", voice="anna", preset="whisper"))]
            with pytest.raises(RequestError, match="XTTS has no voice 'bob'"):
                async for _ in backend.synthesize(SynthesisRequest("Hi.", "en", voice="bob")):
                    pass
            return backend.info, chunks + custom
        finally:
            await backend.close()

    info, chunks = await run_once()
    assert info["latents"] == {"anna": "computed"} and info["sample_rate"] == 24000 and info["device"] == "cuda"
    # two decoded chunks per sentence, then an empty chunk that closes the sentence with its text
    assert [(len(c.samples), c.text) for c in chunks] == [
        (2400, ""), (2400, ""), (0, "Hello there."), (2400, ""), (2400, ""), (0, "Bye now."),
        (2400, ""), (2400, ""), (0, "Привет."),
    ]
    assert all(c.sample_rate == 24000 for c in chunks) and _rms(chunks[0].samples) > 5000
    info, _ = await run_once()  # a restarted worker: the latents come from disk
    assert info["latents"] == {"anna": "cache"}

    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e for e in events if e[0] == "latents"] == [["latents", ["ref0.wav", "ref1.wav", "ref2.wav"]]]
    streams = [e[1:] for e in events if e[0] == "stream"][:3]
    assert streams == [
        ["Hello there.", "en", 0.55, 0.9, 8.0, 30, 0.7, False],  # calm
        ["Bye now.", "en", 0.55, 0.9, 8.0, 30, 0.7, False],
        ["Привет.", "ru", 0.3, 0.8, 4.0, 10, 0.5, False],  # the custom preset from settings
    ]
    assert ["load_checkpoint", "xtts_v2", True, False] in events and ["to", "cuda"] in events
    assert len(list((tmp_path / "xtts_latents").glob("*.json"))) == 1


async def test_xtts_checkpoint_problems_are_reported(tmp_path: Path) -> None:
    stand_in = _stand_in(tmp_path / "stand_in")
    env = {"PYTHONPATH": str(stand_in), "XTTS_STANDIN_LOG": str(tmp_path / "calls.jsonl")}
    backend = build_tts_backend("xtts", XttsSettings(worker=WorkerSettings(env=env)), tmp_path)
    with pytest.raises(BackendUnavailable, match="checkpoint in .*xtts_v2 lacks config.json, model.pth, vocab.json"):
        await backend.load()
    _checkpoint_and_voice(tmp_path)
    few = XttsSettings(voices={"anna": ("voices/anna/ref0.wav",)}, worker=WorkerSettings(env=env))
    backend = build_tts_backend("xtts", few, tmp_path)
    with pytest.raises(BackendUnavailable, match="voice 'anna' has 1 reference sample\\(s\\), needs at least 3"):
        await backend.load()


# -- the real thing -------------------------------------------------------------------------------


def _real_xtts() -> tuple[str, Path, Path] | None:
    """(python, checkpoint dir, reference sample dir) when this machine can run XTTS v2, else None."""
    python = os.environ.get("XTTS_PYTHON", "")
    model_dir = Path(os.environ.get("XTTS_MODEL_DIR", "/nonexistent"))
    voice_dir = Path(os.environ.get("XTTS_VOICE_DIR", "/nonexistent"))
    if not python or not (model_dir / "model.pth").is_file() or len(list(voice_dir.glob("*.wav"))) < 3:
        return None
    probe = "import torch, TTS.tts.models.xtts; raise SystemExit(0 if torch.cuda.is_available() else 1)"
    try:
        ok = subprocess.run([python, "-c", probe], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (python, model_dir, voice_dir) if ok else None


@pytest.mark.gpu
async def test_real_xtts_v2_streams_speech_on_the_gpu(tmp_path: Path) -> None:
    found = await asyncio.to_thread(_real_xtts)
    if found is None:
        pytest.skip("needs XTTS_PYTHON (a venv with coqui-tts + CUDA torch), XTTS_MODEL_DIR and XTTS_VOICE_DIR (3+ WAVs)")
    python, model_dir, voice_dir = found
    settings = XttsSettings(
        model_dir=str(model_dir),
        voices={"owner": (str(voice_dir),)},
        latents_cache_dir=str(tmp_path / "latents"),
        worker=WorkerSettings(python=python, start_timeout_s=600),
    )
    backend = build_tts_backend("xtts", settings, tmp_path)
    await backend.load()
    try:
        await backend.warm_up()
        started = time.monotonic()
        first_at = None
        chunks = []
        async for chunk in backend.synthesize(SynthesisRequest("Thank you for calling. How can I help you today?", "en", preset="natural")):
            first_at = first_at or time.monotonic() - started
            chunks.append(chunk)
        audio = np.concatenate([c.samples for c in chunks])
        print(f"\nXTTS v2 time to first audio {first_at * 1000:.0f} ms, {len(audio) / 24000:.2f} s of audio")
        assert chunks[0].sample_rate == 24000 and _rms(audio) > 500 and 1.5 < len(audio) / 24000 < 10
        assert [c.text for c in chunks if c.text] == ["Thank you for calling.", "How can I help you today?"]
        russian = [c async for c in backend.synthesize(SynthesisRequest("Спасибо за звонок.", "ru", preset="calm"))]
        assert _rms(np.concatenate([c.samples for c in russian])) > 500
    finally:
        await backend.close()
    again = build_tts_backend("xtts", settings, tmp_path)
    await again.load()
    try:
        assert again.info["latents"] == {"owner": "cache"}  # type: ignore[attr-defined]
    finally:
        await again.close()


def test_worker_module_imports_nothing_heavy() -> None:
    # the XTTS venv's python runs this module: it must import with stdlib + numpy only
    probe = (
        "import sys, engines.tts.worker; "
        "heavy = sorted(m for m in ('piper', 'onnxruntime', 'torch', 'TTS', 'num2words') if m in sys.modules); "
        "print(heavy)"
    )
    from engines.tts.worker_client import SOURCE_ROOT

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr

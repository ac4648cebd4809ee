"""Are the models the configured engines need on this machine? (``secretary doctor``; nothing is loaded or written.)"""

from __future__ import annotations

import ctypes.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from config.engines_schema import EnginesConfig, LlamaCppConfig, VllmConfig
from config.rhvoice_voices import RHVOICE_VOICES
from daemon.engine_host.engine_wiring import models_dir_of
from engines.backend import BackendUnavailable
from engines.llm.gguf_model import resolve_gguf
from engines.stt.packaged_whisper import check_whisper_model
from engines.tts.piper_voices import locate_voice
from engines.tts.rhvoice_library import INSTALL_HINT
from engines.tts.rhvoice_voices import VOICES_DIR, installed_voices
from engines.turn_end.smart_turn_backend import resolve_smart_turn_model
from engines.turn_end.turn_end_loader import FIXED_WINDOW
from engines.vad.silero_backend import resolve_silero_model


@dataclass(frozen=True)
class ModelCheck:
    engine: str  # "stt/faster-whisper", "tts/piper en", ...
    ok: bool
    detail: str
    required: bool = True  # False: the engine runs without it, only worse (a warning, not a failure)


def _check(engine: str, probe: object) -> ModelCheck:
    try:
        where = probe() if callable(probe) else probe
    except BackendUnavailable as exc:
        return ModelCheck(engine, False, str(exc))
    return ModelCheck(engine, True, str(where))


def model_checks(engines: EnginesConfig, data_dir: Path, *, turn_end: bool = True) -> list[ModelCheck]:
    """A check per model file an engine in a chain needs; ``turn_end``: calls ask the turn-end model (call.turn_end)."""
    models_dir = models_dir_of(engines, data_dir)
    checks: list[ModelCheck] = []
    if "silero" in engines.vad.chain:
        checks.append(_check("vad/silero", lambda: resolve_silero_model(engines.vad.silero.model)))
    if turn_end and engines.vad.turn_end_model is not None:
        checks.append(turn_end_check(engines.vad.turn_end_model))
    stt = engines.stt
    for kind, whisper in (("faster-whisper", stt.faster_whisper), ("faster-whisper-cpu", stt.faster_whisper_cpu)):
        if kind in stt.chain:
            checks.append(_check(f"stt/{kind}", lambda w=whisper: check_whisper_model(w.model)))
    if "vosk" in stt.chain and stt.vosk.model is not None:
        model = stt.vosk.model
        if model.startswith("packaged:"):
            checks.append(ModelCheck("stt/vosk", True, model))
        else:
            path = Path(model).expanduser()
            checks.append(ModelCheck("stt/vosk", path.is_dir(), str(path) if path.is_dir() else f"{path} does not exist"))
    llm = engines.llm
    for name in llm.chain:
        backend = llm.backends.get(name)
        if isinstance(backend, LlamaCppConfig):
            checks.append(_check(f"llm/{name}", lambda b=backend: resolve_gguf(b.model, models_dir)))
        elif isinstance(backend, VllmConfig):
            path = Path(backend.model).expanduser()
            local = path if path.is_absolute() else models_dir / path
            if local.is_dir():
                checks.append(ModelCheck(f"llm/{name}", True, str(local)))
            else:
                checks.append(ModelCheck(
                    f"llm/{name}", False,
                    f"{backend.model} is not a directory under {models_dir}: the box has no model hub, "
                    "download it once and set the path",
                ))
    tts = engines.tts
    if "piper" in tts.chain:
        for language, spec in tts.piper.voices.items():
            checks.append(_check(f"tts/piper {language}", lambda s=spec: locate_voice(s).model))
    if "xtts" in tts.chain:
        model_dir = tts.xtts.model_dir if tts.xtts.model_dir.is_absolute() else models_dir / tts.xtts.model_dir
        ok = model_dir.is_dir() and tts.xtts.python.exists()
        detail = str(model_dir) if ok else (
            f"{model_dir} is missing" if not model_dir.is_dir() else f"the XTTS python {tts.xtts.python} is missing")
        checks.append(ModelCheck("tts/xtts", ok, detail))
    if "rhvoice" in tts.chain:
        checks.append(rhvoice_check(tts.rhvoice.voices))
    if "espeak" in tts.chain:
        found = shutil.which("espeak-ng")
        checks.append(ModelCheck("tts/espeak", found is not None, found or "espeak-ng is not installed (apt-get install espeak-ng)"))
    return checks


def turn_end_check(spec: str) -> ModelCheck:
    """The optional turn-end model beside the VAD engine: without it calls still work, on the fixed window."""
    try:
        path = resolve_smart_turn_model(spec)
    except BackendUnavailable as exc:
        return ModelCheck("vad/turn-end", False, f"{exc}; until then {FIXED_WINDOW}", required=False)
    return ModelCheck("vad/turn-end", True, str(path))


def rhvoice_check(configured: dict[str, str], voices_dir: Path = VOICES_DIR) -> ModelCheck:
    """Is the RHVoice library there, which voices are installed (and may be offered), are the configured ones?"""
    installed = installed_voices(voices_dir)
    library = ctypes.util.find_library("RHVoice")
    if library is None or not installed:
        return ModelCheck("tts/rhvoice", False, INSTALL_HINT)
    refused = sorted(v for v in installed if (known := RHVOICE_VOICES.get(v)) is not None and not known.commercial)
    listed = ", ".join(v for v in sorted(installed) if v not in refused)
    if refused:
        listed += f" (+{len(refused)} non-commercial, not offered: {', '.join(refused)})"
    missing = sorted(set(configured.values()) - set(installed))
    if missing:
        return ModelCheck("tts/rhvoice", False, f"voice(s) {', '.join(missing)} not installed; installed: {listed}")
    voices = ", ".join(f"{k}={v}" for k, v in sorted(configured.items()))
    return ModelCheck("tts/rhvoice", True, f"{library} ({voices}); installed: {listed}")

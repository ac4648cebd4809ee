"""Smart Turn v3 through onnxruntime: the turn-end model, without the pipecat framework.

The open Smart Turn v3 model (BSD-2-Clause, Daily; multilingual, Russian and
English among its languages) ships inside the ``pipecat-ai`` wheel as
``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`` (int8, 8.7 MB).
``scripts/bootstrap`` and ``image/build-rootfs`` download that pinned wheel
without installing it and take out the one file (and its licence) to
``packaged_path()`` (``smart_turn_wheel``); nothing of pipecat is imported.
``model``: ``packaged:smart-turn-v3`` or an .onnx path.

Input ``input_features`` [batch, 80, 800]: the Whisper log-mel features of the
last 8 s (``whisper_features``); output ``logits`` [batch, 1], already a
sigmoid: P(the turn is complete). One intra-op thread (a judgment is ~40-70 ms
of one core here; more threads fight whisper for the two cores), run in a
worker thread; the session's ``run`` is thread-safe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.audio_format import DTYPE, Samples, checked
from engines.backend import BackendError, BackendUnavailable
from engines.turn_end.interface import TurnEndModel
from engines.turn_end.smart_turn_wheel import packaged_path
from engines.turn_end.whisper_features import FRAMES, N_MELS, WINDOW_S, LogMel

PACKAGED_SMART_TURN = "packaged:smart-turn-v3"
TAKE_HINT = ("scripts/bootstrap (a checkout) or image/build-rootfs (the image) takes it from the pipecat-ai wheel: "
             "python -m engines.turn_end.smart_turn_wheel WHEEL")


@dataclass(frozen=True)
class SmartTurnSettings:
    model: str = PACKAGED_SMART_TURN
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"smart-turn threads must be >= 1, not {self.threads}")


def resolve_smart_turn_model(spec: str) -> Path:
    if spec == PACKAGED_SMART_TURN:
        path = packaged_path()
        if not path.is_file():
            raise BackendUnavailable(
                f"the Smart Turn v3 model {path} is missing: {TAKE_HINT}"
            )
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise BackendUnavailable(f"turn-end model {path} does not exist")
    return path


class SmartTurnBackend(TurnEndModel):
    name = "smart-turn"
    window_s = float(WINDOW_S)

    def __init__(self, settings: SmartTurnSettings | None = None) -> None:
        self.settings = settings or SmartTurnSettings()
        self._session: Any = None
        self._features: LogMel | None = None
        self._path: Path | None = None

    @property
    def model(self) -> str:
        return self._path.name if self._path is not None else self.settings.model

    async def load(self) -> None:
        self._session, self._features, self._path = await asyncio.to_thread(self._load_blocking)

    def _load_blocking(self) -> tuple[Any, LogMel, Path]:
        path = resolve_smart_turn_model(self.settings.model)
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from exc
        try:
            features = LogMel()
        except ImportError as exc:
            raise BackendUnavailable(f"the turn-end features need faster-whisper ({exc})") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"turn-end model {path} could not load: {exc}") from exc
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != "input_features" or list(inputs[0].shape)[1:] != [N_MELS, FRAMES]:
            found = [(i.name, i.shape) for i in inputs]
            raise BackendError(f"{path} is not a Smart Turn v3 model (inputs {found}, want input_features [n, 80, 800])")
        return session, features, path

    async def warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal(2 * self.sample_rate).astype(DTYPE) * DTYPE(0.01)
        await self.completion(noise)

    async def close(self) -> None:
        self._session = None
        self._features = None

    async def completion(self, audio: Samples) -> float:
        samples = checked(audio, "the turn-end model")
        if self._session is None:
            raise BackendError("the turn-end model is not loaded")
        return await asyncio.to_thread(self._judge, samples)

    def _judge(self, audio: Samples) -> float:
        session, features = self._session, self._features
        if session is None or features is None:
            raise BackendError("the turn-end model was closed")
        mel = features(audio)
        out = session.run(None, {"input_features": mel[np.newaxis]})
        return float(np.clip(out[0][0, 0], 0.0, 1.0))

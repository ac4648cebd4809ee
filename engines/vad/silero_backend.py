"""Silero VAD through onnxruntime, without torch.

The ``silero-vad`` wheel ships ``silero_vad/data/silero_vad.onnx``; importing
the ``silero_vad`` package would import torch, so the file is located with
``importlib.util.find_spec`` and run with onnxruntime directly (one intra-op
thread: a frame takes ~70 µs, more threads only add wake-ups). The model is a
small recurrent net: each call takes the new window (512 samples at 16 kHz,
256 at 8 kHz) behind the last 64 (32) samples of the previous one, plus the
recurrent state [2, 1, 128], and returns the speech probability and the next
state. Its samples are float32 in [-1, 1), the engines' audio format, so a
frame is copied in as it comes. The ONNX session is shared (its ``run`` is
thread-safe); each ``SileroSession`` keeps its own state and context.
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.audio_format import DTYPE, Samples
from engines.backend import BackendError, BackendUnavailable
from engines.vad.interface import VadBackend, VadSession, checked_frame

PACKAGED_SILERO = "packaged:silero-vad"
# sample rate -> (window, context) in samples
WINDOWS: dict[int, tuple[int, int]] = {16_000: (512, 64), 8_000: (256, 32)}
STATE_SHAPE = (2, 1, 128)


@dataclass(frozen=True)
class SileroSettings:
    """``model``: packaged:silero-vad (the wheel's silero_vad.onnx) or an .onnx path."""

    model: str = PACKAGED_SILERO
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"silero threads must be >= 1, not {self.threads}")


def resolve_silero_model(spec: str) -> Path:
    if spec == PACKAGED_SILERO:
        found = importlib.util.find_spec("silero_vad")
        locations = list(found.submodule_search_locations or []) if found is not None else []
        if not locations:
            raise BackendUnavailable("silero VAD needs the pip package silero-vad (install it with --no-deps: no torch)")
        path = Path(locations[0]) / "data" / "silero_vad.onnx"
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise BackendUnavailable(f"silero VAD model {path} does not exist")
    return path


class SileroSession(VadSession):
    def __init__(self, session: Any, sample_rate: int) -> None:
        self._session = session
        self.sample_rate = sample_rate
        self.frame_samples, self._context_samples = WINDOWS[sample_rate]
        self._sr = np.array(sample_rate, dtype=np.int64)
        self._input = np.zeros((1, self._context_samples + self.frame_samples), dtype=np.float32)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)

    def probability(self, frame: Samples) -> float:
        window = checked_frame(frame, self.frame_samples, "silero")
        context = self._context_samples
        # the previous window's tail is the new window's context
        self._input[0, :context] = self._input[0, -context:]
        self._input[0, context:] = window
        out, self._state = self._session.run(None, {"input": self._input, "state": self._state, "sr": self._sr})
        return float(out[0, 0])

    def reset(self) -> None:
        self._input.fill(0.0)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)


class SileroBackend(VadBackend):
    name = "silero"
    sample_rates = tuple(sorted(WINDOWS))

    def __init__(self, settings: SileroSettings) -> None:
        self.settings = settings
        self._session: Any = None
        self._path: Path | None = None

    @property
    def model(self) -> str:
        return str(self._path) if self._path is not None else self.settings.model

    async def load(self) -> None:
        self._session, self._path = await asyncio.to_thread(self._load_blocking)

    def _load_blocking(self) -> tuple[Any, Path]:
        path = resolve_silero_model(self.settings.model)
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"silero VAD could not load {path}: {exc}") from exc
        names = {i.name for i in session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise BackendError(f"{path} is not a silero VAD v5/v6 model (inputs {sorted(names)})")
        return session, path

    async def warm_up(self) -> None:
        for rate in self.sample_rates:
            session = self.open(rate)
            for _ in range(3):
                session.probability(np.zeros(session.frame_samples, dtype=DTYPE))

    async def close(self) -> None:
        self._session = None

    def open(self, sample_rate: int) -> SileroSession:
        self._check_rate(sample_rate)
        if self._session is None:
            raise BackendError("silero VAD is not loaded")
        return SileroSession(self._session, sample_rate)

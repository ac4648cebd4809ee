"""The lifecycle every engine backend shares: load, warm up, close.

A backend is one way to do an engine's job (faster-whisper for STT, Piper for
TTS, ...). ``load`` reads its model (in a worker thread or process: never on
the event loop), ``warm_up`` runs a first real inference so the first call is
not the slow one, ``close`` frees it. The engine-specific work (transcribe,
chat, synthesize, detect) is declared by each engine's own interface module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class BackendError(Exception):
    """A backend cannot do its job (load failed, worker died, server error)."""


class BackendUnavailable(BackendError):
    """The backend cannot run on this machine (package, model file or device missing)."""


class EngineBackend(ABC):
    """Base of every backend; ``name`` is the config name of the backend kind."""

    name: str = "backend"

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def model(self) -> str:
        return ""

    @abstractmethod
    async def load(self) -> None:
        """Load the model; raise BackendError (or BackendUnavailable) on failure."""

    async def warm_up(self) -> None:
        """Run one real inference so the first call is fast."""

    async def close(self) -> None:
        """Free the model, worker or process. Must be safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.device} {self.model}>"

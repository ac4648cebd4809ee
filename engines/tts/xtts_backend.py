"""XTTS v2 as a TTS backend: a worker process running ``engines.tts.xtts_inference``.

XTTS needs torch with CUDA and coqui-tts, which live in their own virtual
environment (``XttsSettings.worker.python`` is that venv's interpreter), so it
always runs in a worker process: a CUDA fault or an out-of-memory kill takes
the worker down, the daemon sees a ``BackendError`` and fails over to Piper
while the chain restarts XTTS in the background. Paths are resolved here and
sent absolute; the worker reports device, model and voices when ready.
"""

from __future__ import annotations

from pathlib import Path

from engines.tts.settings import XttsSettings
from engines.tts.worker_client import WorkerTtsBackend


class XttsBackend(WorkerTtsBackend):
    def __init__(self, settings: XttsSettings, models_dir: Path) -> None:
        resolved = settings.resolved(models_dir)
        super().__init__(
            name="xtts",
            worker_backend="xtts",
            settings_json=resolved.as_json(),
            languages=frozenset(settings.languages),
            worker=settings.worker,
            device=settings.device,
            model=f"XTTS v2 ({Path(resolved.model_dir).name})",
        )
        self.settings = resolved

"""The issue's name for the audio benchmark: same as ``bench/bench_audio.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audio import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())

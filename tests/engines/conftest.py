from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One directory for assembled packaged models, shared by the whole test session."""
    yield tmp_path_factory.mktemp("models")

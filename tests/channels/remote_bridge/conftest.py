"""Fixtures the remote bridge's tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.tools.private_broker import MosquittoBroker


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """The owner's remote broker (not the box's): open, as a home broker may be; its logins are the bridge's concern."""
    workdir = tmp_path / "remote-broker"
    workdir.mkdir()
    with MosquittoBroker(workdir=workdir, secured=False) as running:
        yield running

"""Debian's headless chromium driven by Playwright (playwright-core's Python client; no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Without the background-networking flags chromium keeps dialling Google's hosts, which this network refuses.
BASE_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def fake_microphone_args(wav: Path | None = None) -> list[str]:
    """A microphone that plays ``wav`` (or a beep) and needs no permission prompt."""
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return args


@asynccontextmanager
async def chromium(extra_args: Sequence[str] = ()) -> AsyncIterator[object]:
    """A launched browser (playwright.async_api.Browser); skips the test where chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*BASE_ARGS, *extra_args])
        try:
            yield browser
        finally:
            await browser.close()

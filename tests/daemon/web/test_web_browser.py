"""The web page in a real browser (Debian chromium, Playwright) against the real daemon, broker and simulator.

Each test leaves screenshots under test-artifacts/web/ (or $TEST_ARTIFACTS/web/).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import expect

from daemon.tools.demo_caller import RECORDINGS_DIR
from daemon.tools.private_broker import MosquittoBroker
from tests.daemon.web.chromium import chromium, fake_microphone_args
from tests.daemon.web.web_daemon import ARTIFACTS, PASSWORD, WebDaemon, web_daemon
from tests.support.mqtt_watch import MqttWatch

pytestmark = pytest.mark.slow
BASE = "secretary/test-box"
CALLER = "+79161234567"
DEMO_CALLER_WAV = RECORDINGS_DIR / "en" / "01_introduction.wav"


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> WebDaemon:
    async with web_daemon(broker, tmp_path) as daemon:
        yield daemon  # type: ignore[misc]


async def _shot(page: Any, name: str) -> None:
    folder = ARTIFACTS / "web"
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def _until(page: Any, expression: str, above: float, timeout_s: float) -> None:
    """Poll a value in the page (the page's CSP forbids Playwright's eval-based wait_for_function)."""
    for _ in range(int(timeout_s / 0.1)):
        if await page.evaluate(expression) > above:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{expression} stayed at or below {above}")


async def _login(page: Any, box: WebDaemon, next_path: str = "/") -> None:
    await page.goto(f"{box.url}{next_path}")
    assert "/login" in page.url
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{box.url}{next_path}")


async def test_login_live_status_on_a_ring_and_the_call_recording_plays(box: WebDaemon) -> None:
    async with chromium() as browser, MqttWatch(box.broker, f"{BASE}/#") as bus:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{box.url}/")
        await page.wait_for_url("**/login?next=*")
        await page.fill("input[name=password]", "not the password")
        await page.click("button[type=submit]")
        assert "Wrong password" in await page.inner_text("#login-error")
        await _shot(page, "login")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{box.url}/")
        await page.wait_for_selector("#live.ok")
        await expect(page.locator("#modem-operator")).to_have_text("SimTel")
        await page.wait_for_selector("#engines tr[data-topic='engines/tts/state'] .state-ready", timeout=20_000)
        assert await page.inner_text("#call-state") == "idle"

        # The simulator rings: the page follows over the live feed, without a reload.
        reply = await bus.request(f"{BASE}/cmd/simulator/call", json.dumps({"from": CALLER}).encode())
        assert reply["ok"], reply
        await expect(page.locator("#call-state")).to_have_text(re.compile("ringing|active"), timeout=10_000)
        await expect(page.locator("#call-state")).to_have_text("active", timeout=10_000)
        assert await page.inner_text("#call-caller") == CALLER
        await page.wait_for_selector("#transcript li.secretary", timeout=20_000)  # the greeting, live
        await _shot(page, "status-in-call")
        assert (await bus.request(f"{BASE}/cmd/simulator/hangup", b"{}"))["ok"]
        await expect(page.locator("#call-state")).to_have_text("idle", timeout=10_000)
        await expect(page.locator("#call-ended")).to_have_text(re.compile("^Ended"), timeout=20_000)
        await _shot(page, "status")

        # The call in the history; its recording plays in the page.
        await page.goto(f"{box.url}/calls")
        await page.wait_for_selector("#calls tbody tr a")
        assert CALLER in await page.inner_text("#calls")
        await _shot(page, "calls")
        await page.fill("input[name=number]", "00000")
        await page.click("form.filters button[type=submit]")
        assert "No calls match" in await page.inner_text("#calls")
        await page.fill("input[name=number]", "916123")
        await page.click("form.filters button[type=submit]")
        await page.click("#calls tbody tr a")
        await page.wait_for_selector("#audio-secretary")
        assert await page.locator("#transcript li.secretary").count() >= 1
        played = await page.evaluate("""async () => {
            const audio = document.querySelector('#audio-secretary');
            audio.muted = true;
            await audio.play();
            await new Promise((resolve) => setTimeout(resolve, 600));
            return {time: audio.currentTime, duration: audio.duration, error: audio.error && audio.error.code};
        }""")
        assert played["error"] is None and played["time"] > 0.2 and played["duration"] > 1.0, played
        await _shot(page, "call")

        # Delete it (after the browser's confirmation): record and row are gone.
        record_dirs = list((box.data_dir / "calls").iterdir())
        assert len(record_dirs) == 1
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.click("#delete-call")
        await page.wait_for_url(f"{box.url}/calls")
        assert "were deleted" in await page.inner_text(".flash.ok")
        assert "No calls yet" in await page.inner_text("#calls")
        assert not record_dirs[0].exists()


async def test_config_change_shows_the_error_then_saves_and_applies(box: WebDaemon) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await _login(page, box, "/config/modem")
        await page.fill("#f-modem-answer_after_rings", "99")
        await page.click("#config-form button[type=submit]")
        error = page.locator("#f-modem-answer_after_rings ~ .field-error")
        assert "from 0 to 10" in await error.inner_text()
        assert await page.input_value("#f-modem-answer_after_rings") == "99"  # what the owner typed stays
        assert "answer_after_rings: 99" not in box.config_path.read_text()
        await _shot(page, "config-error")

        await page.fill("#f-modem-answer_after_rings", "3")
        await page.click("#config-form button[type=submit]")
        await page.wait_for_selector(".flash.ok", timeout=30_000)
        assert "Saved and applied" in await page.inner_text(".flash.ok")
        assert "answer_after_rings: 3" in box.config_path.read_text()
        assert box.config_path.with_name("config.yaml.bak").exists()
        assert box.app.loaded.settings.modem.answer_after_rings == 3  # the daemon reloaded
        await _shot(page, "config")
        await page.goto(f"{box.url}/config/personas")
        await page.wait_for_selector("#s-personas-lidia")
        await _shot(page, "config-personas")

        # A website widget: added from the channels page, which then shows the line to embed it.
        await page.goto(f"{box.url}/config/channels")
        await page.fill("#add-widget input[name=id]", "site")
        await page.fill("#add-widget input[name=origin]", "https://example.com")
        await page.click("#add-widget button[type=submit]")
        await expect(page.locator("#snippet-site")).to_contain_text('data-widget="site"', timeout=30_000)
        assert "https://example.com" in box.config_path.read_text()
        await _shot(page, "config-channels")


def _voiced_wav(seconds: float, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8)) * (0.4 + 0.6 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    samples = (voiced / np.max(np.abs(voiced)) * 0.25 * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


async def test_voice_upload_rejects_a_bad_file_and_keeps_good_ones(box: WebDaemon, tmp_path: Path) -> None:
    bad = tmp_path / "holiday.wav"
    bad.write_bytes(b"ID3\x04\x00\x00" + bytes(4000))  # an MP3 renamed .wav
    short = tmp_path / "short.wav"
    short.write_bytes(_voiced_wav(1.0))
    good = [tmp_path / f"take{i}.wav" for i in range(3)]
    for path in good:
        path.write_bytes(_voiced_wav(6.0))
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await _login(page, box, "/voices")
        await page.fill("#upload-form input[name=voice]", "anna")
        await page.set_input_files("#upload-form input[type=file]", [str(bad), str(short)])
        await page.click("#upload-form button[type=submit]")
        rejected = await page.inner_text(".upload-rejected >> nth=0")
        assert "holiday.wav" in rejected and "not a WAV file" in rejected
        assert "3 to 30 seconds" in await page.inner_text(".upload-rejected >> nth=1")
        assert not (box.data_dir / "voices" / "anna").exists() or not list((box.data_dir / "voices" / "anna").glob("*.wav"))
        await _shot(page, "voices-rejected")

        await page.fill("#upload-form input[name=voice]", "anna")
        await page.set_input_files("#upload-form input[type=file]", [str(p) for p in good])
        await page.click("#upload-form button[type=submit]")
        await page.wait_for_selector("#voice-anna")
        assert "3 samples" in await page.inner_text("#voice-anna")
        assert len(list((box.data_dir / "voices" / "anna").glob("*.wav"))) == 3
        await page.click("#preview-form button[type=submit]")
        await expect(page.locator("#preview-status")).to_have_text(re.compile("^Spoken by"), timeout=30_000)
        duration = await page.evaluate("""async () => {
            const audio = document.querySelector('#preview-audio');
            if (!isFinite(audio.duration)) await new Promise((r) => audio.addEventListener('loadedmetadata', r, {once: true}));
            return audio.duration;
        }""")
        assert duration > 1.0
        await _shot(page, "voices")


def _after_silence(wav: Path, silence_s: float, out: Path) -> Path:
    """``wav`` with ``silence_s`` of silence first: a caller who lets the greeting play before speaking."""
    with wave.open(str(wav)) as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(b"\0" * (int(silence_s * params.framerate) * params.sampwidth * params.nchannels) + frames)
    return out


async def test_test_call_from_the_browser_reaches_the_call_flow(box: WebDaemon, tmp_path: Path) -> None:
    # The fake microphone plays from the moment the page opens it: a caller talking from the first instant
    # cuts the greeting before a frame of it went out (and an unheard greeting is not in the transcript).
    caller = _after_silence(DEMO_CALLER_WAV, 7.0, tmp_path / "caller-after-greeting.wav")
    async with chromium(fake_microphone_args(caller)) as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await _login(page, box, "/test-call")
        await page.wait_for_selector("#engines", state="detached")  # not the status page
        await page.click("#test-call-start")
        await page.wait_for_selector("#test-call-transcript li.secretary", timeout=30_000)  # the greeting
        await _until(page, "window.secretaryTestCall ? window.secretaryTestCall.stats().played_frames : 0", 25, 20.0)
        await page.wait_for_timeout(2500)  # the caller's recording goes on over the line
        await _shot(page, "test-call")
        await page.click("#test-call-hangup")
        await expect(page.locator("#test-call-status")).to_have_text(re.compile("^Ended"), timeout=20_000)
        stats = await page.evaluate("window.secretaryTestCall.stats()")
        assert stats["sent_frames"] > 100 and stats["received_frames"] > 50, stats

    calls = sorted((box.data_dir / "calls").glob("*-web"))
    assert len(calls) == 1
    record = calls[0]
    for _ in range(100):
        if json.loads((record / "transcript.json").read_text()).get("outcome") != "in_progress":
            break
        await asyncio.sleep(0.1)
    with wave.open(str(record / "caller.wav")) as w:
        assert w.getframerate() == 8000
        caller = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    assert np.sqrt(np.mean(caller ** 2)) > 100  # the microphone's speech reached the line at 8 kHz

"""The status page in a real browser says at once when calls cannot be recorded (a real full disk), and when they can.

Real daemon in-process, real broker and simulator, its calls folder on a
small tmpfs the test fills; Debian's chromium through Playwright.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from daemon.tools.private_broker import MosquittoBroker
from tests.daemon.web.chromium import chromium
from tests.daemon.web.web_daemon import ARTIFACTS, PASSWORD, web_daemon
from tests.support.mqtt_watch import MqttWatch
from tests.support.small_disk import fill, small_tmpfs

pytestmark = pytest.mark.slow
BASE = "secretary/test-box"
CALLER = "+79161234567"


async def test_the_status_page_shows_the_recording_alert_while_the_disk_is_full(
    broker: MosquittoBroker, tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "data" / "calls", "2m") as calls:
        async with web_daemon(broker, tmp_path, extra="call:\n  min_free_mb: 0\n") as box, \
                chromium() as browser, MqttWatch(box.broker, f"{BASE}/#") as bus:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"{box.url}/")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{box.url}/")
            await page.wait_for_selector("#live.ok")
            alert = page.locator("#recording-alert")
            await expect(page.locator("#services tr[data-topic='services/recorder/state'] .state-running")).to_have_count(
                1, timeout=20_000)
            await expect(alert).to_be_hidden()

            filler = fill(calls)
            assert (await bus.request(f"{BASE}/cmd/simulator/call", json.dumps({"from": CALLER}).encode()))["ok"]
            await expect(alert).to_be_visible(timeout=20_000)  # live, over the page's event feed
            await expect(alert).to_have_text(re.compile(r"^Call recording degraded: recording stopped .*disk full"))
            await expect(page.locator("#call-state")).to_have_text("active")  # the call goes on
            folder = ARTIFACTS / "web"
            folder.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(folder / "status-disk-full.png"), full_page=True)

            await page.reload()  # the page as served says it too
            await expect(alert).to_be_visible()

            assert (await bus.request(f"{BASE}/cmd/simulator/hangup", b"{}"))["ok"]
            await expect(page.locator("#call-state")).to_have_text("idle", timeout=20_000)
            os.unlink(filler)
            await expect(alert).to_be_hidden(timeout=20_000)

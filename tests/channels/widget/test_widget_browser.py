"""The widget in a real browser (Debian chromium via Playwright), embedded in a page from another origin.

The host page is served on its own port and reached as http://localhost:<port>
(an allowed origin) or http://127.0.0.1:<port> (the same server, but an
origin the widget does not allow). Its stylesheet is hostile on purpose: the
widget lives in a Shadow DOM and must not care. Screenshots go to
test-artifacts/widget/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import expect

from daemon.tools.private_broker import MosquittoBroker
from tests.calls.call_harness import cloud_llm
from tests.channels.widget.callback_desk import CallbackDesk, callback_desk
from tests.channels.widget.widget_harness import StreamedAnswers, WidgetBox, widget_box, widget_config
from tests.daemon.web.chromium import chromium
from tests.daemon.web.web_daemon import ARTIFACTS
from tests.engines.llm_standins import StandIn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
GREETING = "Hello! I am Lidia. Ask me anything, or leave your number."
HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Host page</title>
<style>
  * {{ font-family: serif !important; color: rgb(255, 0, 0) !important; }}
  button, textarea, input {{ display: none !important; }}
</style></head>
<body><h1>A small business</h1><p class="msg user panel">The page's own paragraph.</p>
<script src="http://127.0.0.1:{widget_port}/widget.js" data-widget="site" async></script>
</body></html>
"""


@dataclass
class HostPage:
    """The embedding site; ``widget_port`` is set once the widget server has its port."""

    port: int = 0
    widget_port: int = 0


@contextlib.asynccontextmanager
async def host_page() -> AsyncIterator[HostPage]:
    host = HostPage()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=HOST_PAGE.format(widget_port=host.widget_port), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host.port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        yield host
    finally:
        await runner.cleanup()


async def _shot(page: Any, name: str) -> None:
    folder = ARTIFACTS / "widget"
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"))


async def visit(browser: Any, box: WidgetBox, desk: CallbackDesk, hold: asyncio.Event, allowed: str, page_port: int) -> None:
    """The visitor's story, on the allowed page, then the same page on an origin that is not allowed."""
    page = await browser.new_page(viewport={"width": 1100, "height": 800})
    await page.goto(f"{allowed}/")
    chat = page.locator("secretary-widget")
    launcher = chat.get_by_role("button", name="Open chat: Ask Lidia")
    await expect(launcher).to_be_visible()  # the page hides every button; not this one
    assert await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(170, 0, 0)"
    assert await page.evaluate("getComputedStyle(document.querySelector('p.msg')).backgroundColor") == "rgba(0, 0, 0, 0)"
    await launcher.click()
    await expect(chat.locator(".msg.greeting")).to_have_text(GREETING)
    message = chat.get_by_role("textbox", name="Message")
    await expect(chat.get_by_role("button", name="Send message")).to_be_enabled()  # connected
    await message.fill("Is Alex in today?")
    await message.press("Enter")
    answers = chat.locator(".msg.assistant:not(.greeting)")
    await expect(answers).to_have_text([re.compile(r"^Hello!\s*$")])  # the model holds the rest: streamed
    hold.set()
    await expect(answers).to_have_text(["Hello! Alex is out until five."])
    await _shot(page, "answered")

    # a reload shows the conversation again (the panel stays open) ...
    await page.reload()
    await expect(chat.locator(".msg.user")).to_have_text(["Is Alex in today?"])
    await expect(answers).to_have_text(["Hello! Alex is out until five."])
    # ... and so does the server's copy when the page's storage is gone
    await page.evaluate("sessionStorage.clear()")
    await page.reload()
    await chat.get_by_role("button", name="Open chat: Ask Lidia").click()
    await expect(chat.locator(".msg.user")).to_have_text(["Is Alex in today?"])
    await expect(answers).to_have_text(["Hello! Alex is out until five."])

    # two messages a minute: the second is answered, the third is refused with the wait
    await message.fill("And tomorrow?")
    await chat.get_by_role("button", name="Send message").click()
    await expect(answers).to_have_count(2)
    await expect(answers.last).to_have_text("Hello! Alex is out until five.")
    await expect(chat.get_by_role("button", name="Send message")).to_be_enabled()  # the answer is done
    await message.fill("Hello again?")
    await message.press("Enter")
    await expect(chat.locator(".msg.note")).to_contain_text(re.compile(r"too fast\. Please wait \d+ seconds?"))
    await expect(message).to_have_value("Hello again?")  # not taken: back in the box to send later
    await expect(chat.locator(".msg.user")).to_have_count(2)

    # the hand-off
    await chat.get_by_role("button", name="Leave your number, we will call you back").click()
    await chat.get_by_label("Your name").fill("John Peters")
    await chat.get_by_label("Phone number").fill("+1 (555) 010-2030")
    await chat.get_by_label("What is it about? (optional)").fill("About the invoice")
    await chat.get_by_role("button", name="Call me back").click()
    await expect(chat.get_by_role("status")).to_have_text("Thank you! We will call you back soon.")
    await _shot(page, "called-back")
    await desk.wait(1)

    # the same page from an origin the widget does not allow: no widget, and no chat
    other = await browser.new_page()
    async with other.expect_console_message(lambda m: "is not available on this page" in m.text) as warned:
        await other.goto(f"http://127.0.0.1:{page_port}/")
    assert "http://127.0.0.1" in (await warned.value).text
    await expect(other.locator("secretary-widget")).to_have_count(0)
    opened = await other.evaluate(
        """url => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
        })""",
        box.chat_url(),
    )
    assert opened == "refused"


async def test_a_visitor_chats_reloads_is_rate_limited_and_leaves_a_number(tmp_path: Path, broker: MosquittoBroker) -> None:
    hold = asyncio.Event()
    llm = StreamedAnswers(hold=hold)
    server = StandIn(llm)
    await server.start()
    try:
        async with host_page() as site:
            page_port = site.port
            allowed = f"http://localhost:{page_port}"
            widget = {"persona": "lidia", "title": "Ask Lidia", "greeting": GREETING, "primary_color": "#aa0000",
                      "allowed_origins": [allowed], "messages_per_minute": 2, "llm": ["cloud"]}
            config = widget_config(tmp_path / "data", broker, {"site": widget}, engines__llm=cloud_llm(server.url))
            async with (
                callback_desk(broker) as desk,
                widget_box(config) as box,
                chromium(["--host-resolver-rules=MAP localhost 127.0.0.1"]) as browser,
            ):
                site.widget_port = box.channel.port or 0
                await visit(browser, box, desk, hold, allowed, page_port)
                requests = desk.requests
    finally:
        await server.stop()
    assert len(llm.bodies) == 2  # the refused third message never reached the model
    assert llm.bodies[0]["messages"][0]["content"].startswith("You are Lidia")
    request = requests[0]
    assert {k: request[k] for k in ("widget", "name", "number", "note", "page")} == {
        "widget": "site", "name": "John Peters", "number": "+15550102030", "note": "About the invoice",
        "page": f"{allowed}/",
    }

"""``channels.telegram``: bots, whitelists and overrides are checked at load with messages a person can act on."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text


def load(text: str) -> object:
    return parse_config_text("box_id: b\n" + text, "test.yaml", environ={}).settings


BOT = "channels:\n  telegram:\n    bots:\n      owner:\n        token_env: TG_TOKEN\n        users: [42, 43]\n"


def test_a_bot_with_defaults() -> None:
    settings = load(BOT)
    bot = settings.channels.telegram.bots["owner"]  # type: ignore[attr-defined]
    assert bot.notify_users == [42, 43] and bot.persona is None and bot.voice_replies
    assert settings.channels.telegram.api_url == "https://api.telegram.org"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("        notify: [7]\n", "notify lists 7, who is not in users"),
        ("        persona: nobody\n", "persona is 'nobody', which is not a persona"),
        ("        llm: [gpt-9]\n", "llm names 'gpt-9', which is not under engines.llm.backends"),
        ("        tts: [xtts]\n", "tts names 'xtts', which is not in engines.tts.chain"),
        ("        users: []\n", "users"),
        ("        token_env: not-an-env\n", "token_env"),
        ("        history_turns: 100\n", "history_turns"),
    ],
)
def test_bad_bots_are_explained(extra: str, message: str) -> None:
    text = BOT
    key = extra.strip().split(":")[0]
    if key in ("users", "token_env"):
        text = "\n".join(line for line in BOT.splitlines() if not line.strip().startswith(key + ":")) + "\n"
    with pytest.raises(ConfigError) as error:
        load(text + extra)
    assert message in str(error.value), str(error.value)


def test_bot_ids_and_api_url_are_checked() -> None:
    with pytest.raises(ConfigError) as error:
        load(BOT.replace("owner:", "Owner Bot:"))
    assert "bots" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load(BOT + "    api_url: ftp://example.org\n")
    assert "must start with https://" in str(error.value)


@pytest.mark.parametrize("extra, message", [
    ("  twilio: {numbers: {'+15551230000': nobody}}\n",
     "channels.twilio.numbers.+15551230000 is 'nobody', which is not a persona"),
    ("  twilio: {enabled: true}\n", "public_url is required when enabled"),
    ("  twilio: {numbers: {'555': lidia}}\n", "E.164"),
    ("  widget: {widgets: {site: {allowed_origins: ['https://example.com'], persona: x}}}\n",
     "channels.widget.widgets.site.persona is 'x', which is not a persona"),
    ("  widget: {widgets: {site: {allowed_origins: ['https://example.com'], llm: [nope]}}}\n",
     "channels.widget.widgets.site.llm names 'nope'"),
    ("  widget: {widgets: {site: {allowed_origins: ['https://example.com/page']}}}\n", "is not an origin"),
    ("  widget: {widgets: {site: {allowed_origins: []}}}\n", "allowed_origins"),
    ("  remote: {enabled: true}\n", "url is required when enabled"),
    ("  remote: {url: 'mqtts://user:secret@fleet.example.com'}\n", "must not contain a password"),
    ("  remote: {topics: ['cmd/#']}\n", "cmd/ is never bridged"),
])
def test_twilio_widget_and_remote_settings_are_explained(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config_text("box_id: b\nchannels:\n" + extra, "config.yaml", {})
    assert message in error.value.render()


def test_twilio_widget_and_remote_settings_load() -> None:
    settings = parse_config_text(
        "box_id: b\nchannels:\n"
        "  twilio: {enabled: true, public_url: 'https://box.example.com/', numbers: {'+15551230000': gulya}}\n"
        "  widget: {widgets: {site: {allowed_origins: ['https://example.com'], persona: lidia}}}\n"
        "  remote: {enabled: true, url: 'mqtts://fleet.example.com'}\n",
        "config.yaml", {},
    ).settings
    assert settings.channels.twilio.public_url == "https://box.example.com"
    assert settings.channels.widget.widgets["site"].persona == "lidia"
    remote = settings.channels.remote
    assert (remote.host, remote.port, remote.tls) == ("fleet.example.com", 8883, True)

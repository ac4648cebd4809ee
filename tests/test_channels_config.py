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

"""Run the Telegram channel as its own process: ``python -m channels.telegram --config PATH``.

Inside ``secretaryd`` it runs as a supervised service; on its own it needs
only the broker (and ``data_dir`` on the same machine for call audio).
"""

from __future__ import annotations

from channels.bus_contract.clients import TELEGRAM, bus_login
from channels.standalone import StandaloneChannel, run_standalone
from channels.telegram.channel import TelegramChannel
from config.loader import LoadedConfig


def build(loaded: LoadedConfig) -> StandaloneChannel | str:
    cfg = loaded.settings
    if not cfg.channels.telegram.bots:
        return "channels.telegram.bots is empty; nothing to run"
    tokens = {bot_id: loaded.secret(bot.token_env) for bot_id, bot in cfg.channels.telegram.bots.items()}
    return TelegramChannel(cfg, tokens, bus_login(cfg.mqtt, TELEGRAM, loaded.secret))


def main(argv: list[str] | None = None) -> int:
    return run_standalone("telegram", __doc__.splitlines()[0], argv, build)


if __name__ == "__main__":
    raise SystemExit(main())

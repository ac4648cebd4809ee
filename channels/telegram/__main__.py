"""Run the Telegram channel as its own process: ``python -m channels.telegram --config PATH``.

Inside ``secretaryd`` it runs as a supervised service; on its own it needs
only the broker (and ``data_dir`` on the same machine for call audio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from channels.telegram.channel import TelegramChannel
from config.errors import ConfigError
from config.loader import load_config

log = logging.getLogger("secretary.channels.telegram")


class LoggedStatus:
    def ready(self, detail: str = "") -> None:
        log.info("telegram channel ready: %s", detail)

    def degraded(self, detail: str) -> None:
        log.warning("telegram channel degraded: %s", detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m channels.telegram", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the box's config file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue)
        return 2
    cfg = loaded.settings
    if not cfg.channels.telegram.bots:
        print(f"{args.config}: channels.telegram.bots is empty; nothing to run")
        return 2
    tokens = {bot_id: loaded.secret(bot.token_env) for bot_id, bot in cfg.channels.telegram.bots.items()}
    channel = TelegramChannel(cfg, tokens, loaded.secret(cfg.mqtt.password_env))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(channel.run(LoggedStatus()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the widget server as its own process: ``python -m channels.widget --config PATH``.

Inside ``secretaryd`` it runs as a supervised service; on its own it needs
only the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from channels.widget.widget_channel import WidgetChannel
from config.errors import ConfigError
from config.loader import load_config

log = logging.getLogger("secretary.channels.widget")


class LoggedStatus:
    def ready(self, detail: str = "") -> None:
        log.info("widget channel ready: %s", detail)

    def degraded(self, detail: str) -> None:
        log.warning("widget channel degraded: %s", detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m channels.widget", description=__doc__.splitlines()[0])
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
    if not cfg.channels.widget.widgets:
        print(f"{args.config}: channels.widget.widgets is empty; nothing to serve")
        return 2
    channel = WidgetChannel(cfg, loaded.secret(cfg.mqtt.password_env))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(channel.run(LoggedStatus()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

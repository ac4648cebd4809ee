"""Channels under the supervisor: each runs in the daemon's process but talks to it only over the bus."""

from __future__ import annotations

from typing import Any

from channels.telegram.channel import TelegramChannel
from config.schema import SecretaryConfig
from daemon.service import Service, ServiceStatus


class TelegramService(Service):
    name = "telegram"

    def __init__(self, config: SecretaryConfig, tokens: dict[str, str | None], mqtt_password: str | None) -> None:
        self.config = config
        self.tokens = tokens
        self.mqtt_password = mqtt_password

    def config_slice(self) -> Any:
        c = self.config
        return (c.channels.telegram, c.mqtt, c.box_id, c.data_dir, c.personas, c.call.persona, self.tokens,
                self.mqtt_password)

    async def run(self, status: ServiceStatus) -> None:
        await TelegramChannel(self.config, self.tokens, self.mqtt_password).run(status)


def channel_services(config: SecretaryConfig, secret: Any) -> list[Service]:
    """The channel services the config asks for; ``secret(name)`` reads a secret by its env var name."""
    services: list[Service] = []
    telegram = config.channels.telegram
    if telegram.bots:
        tokens = {bot_id: secret(bot.token_env) for bot_id, bot in telegram.bots.items()}
        services.append(TelegramService(config, tokens, secret(config.mqtt.password_env)))
    return services

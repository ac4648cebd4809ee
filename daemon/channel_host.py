"""Channels under the supervisor: each runs in the daemon's process but talks to it only over the bus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.bus_contract.clients import REMOTE, TELEGRAM, TWILIO, WIDGET, BusLogin, Role, bus_login
from channels.telegram.channel import TelegramChannel
from channels.twilio.twilio_channel import TwilioChannel
from channels.widget.widget_channel import WidgetChannel
from config.schema import SecretaryConfig
from daemon.runtime.service import Service, ServiceStatus


class TelegramService(Service):
    name = "telegram"

    def __init__(self, config: SecretaryConfig, tokens: dict[str, str | None], bus_login: BusLogin) -> None:
        self.config = config
        self.tokens = tokens
        self.bus_login = bus_login

    def config_slice(self) -> Any:
        c = self.config
        return (c.channels.telegram, c.mqtt, c.box_id, c.data_dir, c.personas, c.call.persona, self.tokens,
                self.bus_login)

    async def run(self, status: ServiceStatus) -> None:
        await TelegramChannel(self.config, self.tokens, self.bus_login).run(status)


class TwilioService(Service):
    name = "twilio"

    def __init__(self, config: SecretaryConfig, secret: Callable[[str], str | None], bus_login: BusLogin) -> None:
        self.config = config
        self.secret = secret
        self.bus_login = bus_login
        twilio = config.channels.twilio
        self._secrets = (secret(twilio.account_sid_env), secret(twilio.auth_token_env))

    def config_slice(self) -> Any:
        c = self.config
        return (c.channels.twilio, c.mqtt, c.box_id, c.data_dir, c.personas, c.call.persona, self._secrets,
                self.bus_login)

    async def run(self, status: ServiceStatus) -> None:
        await TwilioChannel(self.config, self.secret, self.bus_login).run(status)


class WidgetService(Service):
    name = "widget"

    def __init__(self, config: SecretaryConfig, bus_login: BusLogin) -> None:
        self.config = config
        self.bus_login = bus_login

    def config_slice(self) -> Any:
        c = self.config
        return (c.channels.widget, c.mqtt, c.box_id, c.personas, c.call.persona, self.bus_login)

    async def run(self, status: ServiceStatus) -> None:
        await WidgetChannel(self.config, self.bus_login).run(status)


class RemoteBridgeService(Service):
    name = "remote"

    def __init__(self, config: SecretaryConfig, local_login: BusLogin, remote_password: str | None) -> None:
        self.config = config
        self.local_login = local_login
        self.remote_password = remote_password

    def config_slice(self) -> Any:
        c = self.config
        return (c.channels.remote, c.mqtt, c.box_id, self.local_login, self.remote_password)

    async def run(self, status: ServiceStatus) -> None:
        from channels.remote_bridge.bridge import RemoteBridge

        await RemoteBridge(self.config, self.local_login, self.remote_password).run(status)


def channel_services(config: SecretaryConfig, secret: Callable[[str], str | None]) -> list[Service]:
    """The channel services the config asks for; ``secret(name)`` reads a secret by its env var name."""
    services: list[Service] = []
    telegram = config.channels.telegram

    def login(role: Role) -> BusLogin:  # each channel connects as its own user (channels/bus_contract/clients.py)
        return bus_login(config.mqtt, role, secret)

    if telegram.bots:
        tokens = {bot_id: secret(bot.token_env) for bot_id, bot in telegram.bots.items()}
        services.append(TelegramService(config, tokens, login(TELEGRAM)))
    if config.channels.twilio.enabled:
        services.append(TwilioService(config, secret, login(TWILIO)))
    if config.channels.widget.widgets:
        services.append(WidgetService(config, login(WIDGET)))
    remote = config.channels.remote
    if remote.enabled:
        services.append(RemoteBridgeService(config, login(REMOTE), secret(remote.password_env)))
    return services

"""A client's broker login as the box's own processes find it, for harnesses that run them in the test's process.

``config_login(config, role)`` reads ``mqtt.credentials_file`` (which a
secured test broker's ``mqtt_fields`` names) and asks the product's
``bus_login`` who ``role`` connects as: the same path ``secretaryd`` and a
standalone channel take, so a harness built from a config needs no broker
object. ``config_mqtt(broker)`` is that config's ``mqtt`` section.
"""

from __future__ import annotations

from typing import Any

from channels.bus_contract.clients import BusLogin, Role, bus_login
from config.schema import SecretaryConfig
from config.secrets import read_env_file
from daemon.tools.private_broker import MosquittoBroker


def config_mqtt(broker: MosquittoBroker | str) -> dict[str, Any]:
    """The ``mqtt`` section for ``broker``: a private broker's URL and credentials file, or a bare URL (none there)."""
    return broker.mqtt_fields() if isinstance(broker, MosquittoBroker) else {"url": broker}


def config_login(config: SecretaryConfig, role: Role) -> BusLogin:
    """Who ``role`` connects as under ``config`` (no user without ``mqtt.credentials_file`` or ``mqtt.username``)."""
    found: dict[str, str] = {}
    if config.mqtt.credentials_file is not None:
        found, problems = read_env_file(config.mqtt.credentials_file)
        assert not problems, [problem.message for problem in problems]
    return bus_login(config.mqtt, role, found.get)

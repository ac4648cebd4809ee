"""Home Assistant MQTT discovery for the box: pure functions from the bridge's settings to messages.

Each entity is one retained config at
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` whose payload
names the box as its device and the bridge's remote ``status`` as its
availability, so the whole box goes "unavailable" when the bridge or the box
goes away. State comes from the bridged topics on the remote broker
(``modem/state``, ``call/state``, ``last_call``, ``engines/<name>/state``);
the "Hang up" button publishes ``PRESS`` to ``<remote base>ha/hangup``.
Entity ids come out as ``<component>.secretary_<box_id>_<object_id>`` (slugged).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from channels.bus_contract.box_payloads import OFFLINE, ONLINE
from channels.bus_contract.call_payloads import CALL_STATES
from channels.bus_contract.topics import CALL_STATE, LAST_CALL, MODEM_STATE, STATUS, engine_state, remote_command
from channels.bus_contract.verbs import HANGUP

MANUFACTURER = "AI Secretary"
MODEL = "SIM7600G-H box"
ORIGIN = "ai-secretary-box"
PAYLOAD_PRESS = "PRESS"

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def node_id(box_id: str) -> str:
    """``secretary_<box_id>`` with anything but ``[a-zA-Z0-9_-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", f"secretary_{box_id}")


def object_slug(name: str) -> str:
    """A valid Home Assistant object id: ``[a-z0-9_]``, no ``__``, no ``_`` at either end."""
    return _NOT_SLUG.sub("_", name.lower()).strip("_") or "x"


@dataclass(frozen=True)
class DiscoveryContext:
    discovery_prefix: str
    box_id: str
    remote_base: str  # "<remote_prefix>/<box_id>/"
    device_name: str
    sw_version: str

    @property
    def node_id(self) -> str:
        return node_id(self.box_id)

    @property
    def availability_topic(self) -> str:
        return f"{self.remote_base}{STATUS}"

    def command_topic(self, command: str) -> str:
        return f"{self.remote_base}{remote_command(command)}"


@dataclass(frozen=True)
class Discovery:
    topic: str
    config: dict[str, Any]

    @property
    def payload(self) -> bytes:
        return json.dumps(self.config, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def device_name(box_id: str, node_name: str | None) -> str:
    return node_name or f"Secretary {box_id}"


def _entity(ctx: DiscoveryContext, component: str, object_id: str, name: str, **fields: Any) -> Discovery:
    unique = f"{ctx.node_id}_{object_id}"
    slug = object_slug(unique)
    config: dict[str, Any] = {
        "unique_id": unique,
        "object_id": slug,  # how HA before 2025.10 names the entity; later ones read default_entity_id
        "default_entity_id": f"{component}.{slug}",
        "name": name,
        "device": {
            "identifiers": [ctx.node_id],
            "name": ctx.device_name,
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": ctx.sw_version,
        },
        "origin": {"name": ORIGIN, "sw_version": ctx.sw_version},
        "availability_topic": ctx.availability_topic,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        **fields,
    }
    return Discovery(f"{ctx.discovery_prefix}/{component}/{ctx.node_id}/{object_id}/config", config)


def modem_entities(ctx: DiscoveryContext) -> list[Discovery]:
    """Signal, Registered and Operator, from the retained ``modem/state``."""
    state = f"{ctx.remote_base}{MODEM_STATE}"
    return [
        _entity(ctx, "sensor", "signal", "Signal", state_topic=state, value_template="{{ value_json.signal_dbm }}",
                device_class="signal_strength", unit_of_measurement="dBm", state_class="measurement",
                entity_category="diagnostic"),
        _entity(ctx, "binary_sensor", "registered", "Registered", state_topic=state,
                value_template="{{ 'ON' if value_json.registered else 'OFF' }}", payload_on="ON", payload_off="OFF",
                device_class="connectivity", json_attributes_topic=state),
        _entity(ctx, "sensor", "operator", "Operator", state_topic=state, value_template="{{ value_json.operator }}",
                icon="mdi:sim"),
    ]


def call_state_entity(ctx: DiscoveryContext) -> Discovery:
    state = f"{ctx.remote_base}{CALL_STATE}"
    return _entity(ctx, "sensor", "call_state", "Call state", state_topic=state,
                   value_template="{{ value_json.state }}", device_class="enum", options=list(CALL_STATES),
                   json_attributes_topic=state, icon="mdi:phone")


def last_caller_entity(ctx: DiscoveryContext) -> Discovery:
    state = f"{ctx.remote_base}{LAST_CALL}"
    return _entity(ctx, "sensor", "last_caller", "Last caller", state_topic=state,
                   value_template="{{ value_json.caller or 'withheld' }}", json_attributes_topic=state,
                   icon="mdi:phone-incoming")


def engine_entity(ctx: DiscoveryContext, engine: str) -> Discovery:
    """``Engine <name>`` from ``engines/<name>/state``: its state, the payload as attributes."""
    state = f"{ctx.remote_base}{engine_state(engine)}"
    return _entity(ctx, "sensor", f"engine_{object_slug(engine)}", f"Engine {engine}", state_topic=state,
                   value_template="{{ value_json.state }}", json_attributes_topic=state, entity_category="diagnostic",
                   icon="mdi:cog")


def hangup_button(ctx: DiscoveryContext) -> Discovery:
    return _entity(ctx, "button", "hangup", "Hang up", command_topic=ctx.command_topic(HANGUP),
                   payload_press=PAYLOAD_PRESS, icon="mdi:phone-hangup")


def box_entities(
    ctx: DiscoveryContext, *, modem: bool, call_state: bool, last_call: bool, commands: list[str]
) -> list[Discovery]:
    """The fixed entities whose source is bridged (engines come as they appear: ``engine_entity``)."""
    entities: list[Discovery] = []
    if modem:
        entities.extend(modem_entities(ctx))
    if call_state:
        entities.append(call_state_entity(ctx))
    if last_call:
        entities.append(last_caller_entity(ctx))
    if "hangup" in commands:
        entities.append(hangup_button(ctx))
    return entities

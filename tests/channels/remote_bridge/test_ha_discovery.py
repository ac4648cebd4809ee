"""Home Assistant discovery messages: topics, ids, device, availability, the entities' sources."""

from __future__ import annotations

import json
import re

from channels.remote_bridge.ha_discovery import (
    DiscoveryContext,
    box_entities,
    device_name,
    engine_entity,
    node_id,
    object_slug,
)

CTX = DiscoveryContext("homeassistant", "kitchen.box-1", "fleet/kitchen.box-1/", "Secretary kitchen.box-1", "0.1.0")
ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")  # Home Assistant's rule
TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor|button)/secretary_kitchen_box-1/[a-z0-9_]+/config$")


def test_node_id_slugs_and_device_name() -> None:
    assert object_slug("secretary_kitchen.box-1_signal") == "secretary_kitchen_box_1_signal"
    assert object_slug("__A--b__") == "a_b" and object_slug("--") == "x"
    assert node_id("kitchen.box-1") == "secretary_kitchen_box-1"
    assert node_id("a b/c+#") == "secretary_a_b_c__"
    assert device_name("b1", None) == "Secretary b1" and device_name("b1", "Front desk") == "Front desk"


def test_every_entity_has_a_valid_unique_config() -> None:
    entities = [*box_entities(CTX, modem=True, call_state=True, last_call=True, commands=["hangup"]),
                engine_entity(CTX, "stt"), engine_entity(CTX, "my-llm")]
    assert len({e.topic for e in entities}) == len(entities) == 8
    ids = set()
    for entity in entities:
        assert TOPIC.match(entity.topic), entity.topic
        config = json.loads(entity.payload)
        assert config == entity.config
        assert entity.topic.split("/")[-2] in config["unique_id"]
        ids.add(config["unique_id"])
        assert config["name"] and ENTITY_ID.match(config["default_entity_id"]), config["default_entity_id"]
        assert config["default_entity_id"] == f"{entity.topic.split('/')[1]}.{config['object_id']}"
        assert config["device"] == {"identifiers": ["secretary_kitchen_box-1"], "name": "Secretary kitchen.box-1",
                                    "manufacturer": "AI Secretary", "model": "SIM7600G-H box", "sw_version": "0.1.0"}
        assert config["origin"]["name"] == "ai-secretary-box"
        assert (config["availability_topic"], config["payload_available"], config["payload_not_available"]) == (
            "fleet/kitchen.box-1/status", "online", "offline")
        assert ("state_topic" in config) != ("command_topic" in config)
        for key in ("state_topic", "command_topic", "json_attributes_topic"):
            assert config.get(key, "fleet/kitchen.box-1/").startswith("fleet/kitchen.box-1/")
    assert len(ids) == len(entities)


def test_entities_and_their_sources() -> None:
    by_name = {e.config["name"]: e for e in box_entities(CTX, modem=True, call_state=True, last_call=True,
                                                          commands=["hangup"])}
    assert sorted(by_name) == ["Call state", "Hang up", "Last caller", "Operator", "Registered", "Signal"]
    signal = by_name["Signal"]
    assert signal.topic == "homeassistant/sensor/secretary_kitchen_box-1/signal/config"
    assert signal.config["state_topic"] == "fleet/kitchen.box-1/modem/state"
    assert (signal.config["device_class"], signal.config["unit_of_measurement"], signal.config["state_class"]) == (
        "signal_strength", "dBm", "measurement")
    assert signal.config["value_template"] == "{{ value_json.signal_dbm }}"
    registered = by_name["Registered"]
    assert registered.topic.startswith("homeassistant/binary_sensor/")
    assert registered.config["device_class"] == "connectivity"
    call = by_name["Call state"].config
    assert call["state_topic"] == call["json_attributes_topic"] == "fleet/kitchen.box-1/call/state"
    assert call["options"] == ["idle", "ringing", "active", "ending"]
    last = by_name["Last caller"].config
    assert last["state_topic"] == last["json_attributes_topic"] == "fleet/kitchen.box-1/last_call"
    button = by_name["Hang up"]
    assert button.topic == "homeassistant/button/secretary_kitchen_box-1/hangup/config"
    assert button.config["command_topic"] == "fleet/kitchen.box-1/ha/hangup"
    assert button.config["payload_press"] == "PRESS"
    engine = engine_entity(CTX, "my-llm")
    assert engine.topic == "homeassistant/sensor/secretary_kitchen_box-1/engine_my_llm/config"
    assert engine.config["name"] == "Engine my-llm"
    state = "fleet/kitchen.box-1/engines/my-llm/state"
    assert engine.config["state_topic"] == engine.config["json_attributes_topic"] == state
    assert engine.config["value_template"] == "{{ value_json.state }}"


def test_only_entities_whose_source_is_bridged() -> None:
    names = [e.config["name"] for e in box_entities(CTX, modem=False, call_state=True, last_call=False, commands=[])]
    assert names == ["Call state"]
    assert box_entities(CTX, modem=False, call_state=False, last_call=False, commands=[]) == []

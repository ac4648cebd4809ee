"""The bridge's own connection to the remote broker: MQTT v5, TLS for mqtts://, credentials, last will.

A clean session every time: the bridge republishes its whole picture on each
connection, and a button pressed while the box was away must not fire later.
The last will (``status`` = ``offline``, retained, QoS 1) is what the remote
side sees when the box dies without saying goodbye.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import aiomqtt

from channels.bus_client import NO_DELAY
from channels.bus_contract.box_payloads import BoxStatus
from config.remote_schema import RemoteBridgeConfig

CONNECT_TIMEOUT_S = 10.0
OFFLINE = BoxStatus(online=False).encode().encode("utf-8")
ONLINE = BoxStatus(online=True).encode().encode("utf-8")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify the remote broker against ``ca_file`` (a PEM CA), or the system's CAs; raises OSError."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


def remote_client(
    remote: RemoteBridgeConfig, identifier: str, password: str | None, status_topic: str, keepalive_s: int
) -> aiomqtt.Client:
    """A client for ``remote.url`` (not yet connected: use it as ``async with``)."""
    return aiomqtt.Client(
        remote.host, remote.port, username=remote.username, password=password,
        identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True, keepalive=keepalive_s,
        timeout=CONNECT_TIMEOUT_S, socket_options=NO_DELAY,
        will=aiomqtt.Will(status_topic, OFFLINE, qos=1, retain=True),
        tls_context=tls_context(remote.ca_file) if remote.tls else None,
    )

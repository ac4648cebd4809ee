"""The daemon's side of the MQTT bus: one connection, an outbox that survives the broker's absence, commands.

``connection.py`` owns the aiomqtt client (online/offline with a last will,
reconnects, firm stops); what the daemon publishes waits in ``outbox.py``
while the broker is away; ``cmd/<verb>`` messages are routed by
``commands.py`` to the handler a service registered, and every reply goes to
the request's response topic::

    service -> Bus.publish -> Outbox -> BusConnection -> broker
    broker -> BusConnection -> CommandRouter -> handler -> reply

The topic names, command verbs and payloads come from the bus contract,
``channels/bus_contract/``.
"""

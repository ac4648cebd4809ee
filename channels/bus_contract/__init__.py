"""The bus contract in one home: the topics, the commands and the payloads the daemon and every channel share.

design.md's MQTT section as code. ``topics.py`` names every suffix under
``<prefix>/<box_id>/`` and the topics each reader subscribes to; ``verbs.py``
names every ``cmd/<verb>``; ``limits.py`` says how big a payload and a packet
may be; ``box_payloads.py`` (``status``, services,
engines), ``modem_payloads.py`` (``modem/state``, ``modem/event``),
``call_payloads.py`` (``call/state``, ``call/event``) and
``message_payloads.py`` (``sms/event``, ``callback/event``) hold one typed
payload per message, each with one ``encode`` (the JSON-able value on the
wire) and one ``decode`` (checks it; ``fields.PayloadError`` names the field
that does not fit). It lives under ``channels`` because channels may not
import the daemon; the daemon imports it. No other module spells a topic::

    daemon publisher -> Payload.encode() -> Bus.publish_*(topics.SUFFIX) -> broker
    broker -> ChannelBus / status relay / metrics -> Payload.decode() -> reader
    channel -> ChannelBus.request(verbs.VERB) -> broker -> CommandRouter -> handler
"""

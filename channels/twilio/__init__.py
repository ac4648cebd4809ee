"""The Twilio channel: calls to the owner's Twilio numbers, answered by the same secretary as the GSM line.

Twilio calls the box's webhooks (``webhooks.py``, every request checked by
``signature.py``). With Media Streams the call's live audio arrives over a
WebSocket (``media_stream.py``), accepted only for the call a signed
``/voice`` opened (``stream_grants.py``), and is bridged to the daemon's line socket,
so the call runs on the very call flow, record and events of a modem call.
Without them, a ``<Gather>``/``<Say>`` conversation goes through ``cmd/chat``
and ends in a voicemail handed to the box (``handoff.py``). The channel talks
to the daemon only through the bus and the line socket.
"""

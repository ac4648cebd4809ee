"""The remote MQTT bridge: the box's bus, republished to a remote broker, and Home Assistant discovery.

``RemoteBridge(config, local_login, remote_password).run(status)`` (in
``bridge.py``) is the channel. Beside it: ``remote_client.py`` (the remote
connection: TLS, credentials, last will), ``outbox.py`` (what waits for the
remote broker), ``topics.py`` (topic filters), ``ha_discovery.py`` (the
discovery messages), ``last_call.py`` (the "last caller" state) and
``sms_privacy.py`` (an SMS without its text, unless the owner wants it). Its
aiomqtt loops stop through ``channels/firm_cancel.py`` (reliably on 3.11).
"""

"""Local web UI: login, status, call history, settings, cloned voices and the browser test call.

``web_service.py`` runs an aiohttp site as a supervised service; ``web_app.py``
builds the application (security headers, login, CSRF, static files) and
mounts the pages in ``pages/``. What every page shares is in
``web_context.py``; the password and sessions are ``auth.py``; the live state
is relayed from the bus by ``status_relay.py`` and counted by ``metrics.py``;
settings are edited by ``config_forms.py`` and ``config_editor.py`` without
losing the owner's comments; ``browser_call_socket.py`` carries a browser's
microphone into the call flow. ``transport/`` is the network side: TLS and its
certificate, the Host check, body limits, who a client is for the login
throttle (docs/security.md)::

    browser -> TLS (transport/) -> web_app -> pages/* -> WebContext -> bus (commands, state) and the config file
    browser microphone -> browser_call_socket -> call/stream_line -> the call flow
"""

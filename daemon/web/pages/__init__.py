"""The web page's page handlers: one module per page, each reading the box through ``WebContext``.

``call_figures.py`` is not a page: it computes what the call view's timeline
and the status page's voice-to-voice card draw, from the call records.
``web_app.py`` mounts the pages behind the login and CSRF middlewares::

    browser -> web_app middlewares -> a page handler -> WebContext (config, bus, stores) -> HTML or JSON
"""

"""The web page's page handlers: one module per page, each reading the box through ``WebContext``.

``web_app.py`` mounts them behind the login and CSRF middlewares::

    browser -> web_app middlewares -> a page handler -> WebContext (config, bus, stores) -> HTML or JSON
"""

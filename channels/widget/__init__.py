"""The website chat widget: a script sites embed, and the server it talks to.

A site embeds ``<script src="https://BOX/widget.js" data-widget="site" async></script>``.
The script fetches the widget's look (``/widget/<id>/config``, CORS-allowed
only for the widget's ``allowed_origins``), draws a launcher and a chat panel
inside a Shadow DOM and chats over a WebSocket (``/widget/<id>/chat``): the
visitor's messages are answered by the widget's persona through the bus
command ``cmd/chat`` (streamed), and "leave your number" becomes the bus
command ``cmd/notify/callback_request``, which the daemon turns into a
message for the owner. Like every channel it imports nothing of the daemon.
"""

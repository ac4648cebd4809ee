"""secretaryd and the ``secretary`` command: the box's process, built from rooms that stack one way.

At the top are only the entry points and the composition root: ``main.py``
(``secretaryd``), ``cli.py`` (``secretary``), ``app.py`` (builds every service
from the config and owns their lifecycle) and ``channel_host.py`` (the
channels run as services of this process). Below them the rooms, each
importing only the rooms beneath it (``tests/test_code_rules.py`` checks it)::

    runtime -> bus -> engine_host -> modem -> records -> voices -> dialogue -> call -> web -> gpu
        -> app.py, channel_host.py -> tools -> main.py, cli.py

``docs/architecture.md`` walks through them, and the call's path is drawn in
``daemon/call/__init__.py``.
"""

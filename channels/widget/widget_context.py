"""What the widget's handlers share: the config, the bus, the visitor sessions, the limits, the open sockets.

The limits: messages per minute and call-backs per hour (per session and per
address), new sessions per hour (per address), open chats (``connections``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from aiohttp import web

from channels.bus_client import ChannelBus
from channels.widget.connections import ConnectionLimits
from channels.widget.rate_limit import SlidingWindowLimiter
from channels.widget.visitor_sessions import VisitorSessions
from channels.widget.widget_script import WidgetScript
from config.schema import SecretaryConfig
from config.widget_schema import WidgetConfig

CALLBACKS_PER_HOUR = 5  # per visitor session and per address: each one becomes a message to the owner
NEW_SESSIONS_PER_HOUR = 30  # per address and widget: new conversations (a reload keeps its own)


@dataclass
class WidgetContext:
    settings: SecretaryConfig
    bus: ChannelBus
    script: WidgetScript
    sessions: VisitorSessions = field(default_factory=VisitorSessions)
    messages: SlidingWindowLimiter = field(default_factory=lambda: SlidingWindowLimiter(60.0))
    callbacks: SlidingWindowLimiter = field(default_factory=lambda: SlidingWindowLimiter(3600.0))
    new_sessions: SlidingWindowLimiter = field(default_factory=lambda: SlidingWindowLimiter(3600.0))
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)

    def widget(self, widget_id: str) -> WidgetConfig | None:
        return self.settings.channels.widget.widgets.get(widget_id)

    def persona_of(self, widget: WidgetConfig) -> str:
        return widget.persona or self.settings.call.persona


CONTEXT = web.AppKey("widget_context", WidgetContext)


def context(request: web.Request) -> WidgetContext:
    return request.app[CONTEXT]

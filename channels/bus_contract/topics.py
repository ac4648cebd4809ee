"""The MQTT topic names of design.md's contract, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    box_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.box_id}"

    def __call__(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"

    @property
    def status(self) -> str:
        return self("status")

    @property
    def modem_state(self) -> str:
        return self("modem/state")

    @property
    def call_state(self) -> str:
        return self("call/state")

    @property
    def call_event(self) -> str:
        return self("call/event")

    def engine_state(self, engine: str) -> str:
        return self(f"engines/{engine}/state")

    def service_state(self, service: str) -> str:
        return self(f"services/{service}/state")

    @property
    def command_filter(self) -> str:
        return self("cmd/#")

    def command_verb(self, topic: str) -> str | None:
        """``<base>/cmd/sms/send`` -> ``sms/send``; None for other topics."""
        head = self("cmd/")
        return topic[len(head):] if topic.startswith(head) and len(topic) > len(head) else None

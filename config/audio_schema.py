"""``audio:``: how the daemon schedules its 20 ms line clock."""

from __future__ import annotations

from pydantic import Field

from config.section import Section


class AudioConfig(Section):
    realtime_priority: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=99,
        json_schema_extra={
            "allowed": "null (normal scheduling, the default) or a SCHED_FIFO priority from 1 to 99 for the "
            "event-loop thread that runs the line clock; needs CAP_SYS_NICE or LimitRTPRIO"
        },
    )

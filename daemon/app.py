"""The daemon as a whole: builds the services from config and owns their lifecycle.

Start: data dir, bus, supervisor, signal handlers, ``READY=1`` once every
service has started (or failed once). SIGTERM/SIGINT: the services wind down
(a live call hears a goodbye, is hung up, its record finished and its
``ended`` published), then everything stops in reverse order within the stop
budget, the bus last (it flushes the last events and retained states).
SIGHUP or ``cmd/reload``: read the config again; if it is valid, restart only
the services whose part of the config changed; if not, keep running on the old
one and say why.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.bus_contract.clients import DAEMON, WEB, bus_login
from channels.bus_contract.topics import Topics, service_state
from channels.bus_contract.verbs import RELOAD
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from daemon.bus.commands import CommandError
from daemon.bus.connection import Bus, BusConnection
from daemon.call.line_socket import LineCallRunner, LineSocketService
from daemon.call.service import CallService, CallServiceDraining
from daemon.channel_host import channel_services
from daemon.dialogue.chat_service import ChatService
from daemon.engine_host.engine_service import EngineService
from daemon.engine_host.engine_wiring import engine_services
from daemon.engine_host.speech_readiness import SpeechReadiness
from daemon.modem.modem_service import ModemService
from daemon.records.callback_requests import CallbackRequests
from daemon.records.recorder_service import RecorderService, RecordingWatch
from daemon.runtime.logging_setup import configure_logging
from daemon.runtime.service import Service, ServiceReport, ServiceState
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from daemon.runtime.systemd_notify import SystemdNotifier, WatchdogService
from daemon.web.web_context import BrowserCallRunner
from daemon.web.web_service import WebService
from drivers.sim7600 import ModemEvent, Sim7600Modem
from drivers.sim7600.event_hub import EventHub

log = logging.getLogger("secretary.app")

STARTUP_TIMEOUT_S = 30.0
# A stop (SIGTERM from systemd, SIGINT from Ctrl-C): first a live call's goodbye, hang-up and final record
# (WIND_DOWN_BUDGET_S; nothing to wait for when idle), then every service stopped in reverse order
# (STOP_BUDGET_S). Both together stay well inside systemd/secretaryd.service's TimeoutStopSec=10.
WIND_DOWN_BUDGET_S = 4.0
STOP_BUDGET_S = 4.5  # an idle daemon ends within 5 s


class SecretaryApp:
    def __init__(
        self,
        loaded: LoadedConfig,
        config_path: Path | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.loaded = loaded
        self.config_path = config_path
        self.notifier = notifier or SystemdNotifier()
        cfg = loaded.settings
        self.bus = Bus(Topics(cfg.mqtt.topic_prefix, cfg.box_id), cfg.mqtt.max_queued_events)
        self.supervisor = Supervisor(
            RestartPolicy(cfg.supervisor.backoff_initial_s, cfg.supervisor.backoff_max_s, cfg.supervisor.stable_after_s),
            on_report=self._on_report,
            stop_timeout_s=cfg.supervisor.stop_timeout_s,
        )
        self._stop = asyncio.Event()
        self.modem_events: EventHub[ModemEvent] = EventHub()  # the modem service relays, the call flow listens
        self.readiness = SpeechReadiness(self._engine_service)  # can the box speak on a call now? (one home)
        self.recording = RecordingWatch()  # the calls' recorders and waiting record writes (services/recorder)
        self._tasks: asyncio.TaskGroup | None = None
        # Replacements a reload left waiting for live calls: name -> (the new service, the task that starts it).
        self._replacing: dict[str, tuple[Service, asyncio.Task[None]]] = {}
        self.started_at = time.time()

    # -- services -------------------------------------------------------------------
    def build_services(self, loaded: LoadedConfig) -> list[Service]:
        cfg = loaded.settings
        return [
            BusConnection(self.bus, cfg.mqtt, bus_login(cfg.mqtt, DAEMON, loaded.secret)),
            WatchdogService(self.notifier, healthy=self._healthy),
            ModemService(
                self.bus, cfg.modem, loaded.secret(cfg.modem.pin_env), cfg.data_dir,
                relay=self.modem_events, may_answer=self._may_answer,
            ),
            *engine_services(self.bus, cfg.engines, cfg.data_dir, loaded.secret, keep_free_mb=cfg.call.min_free_mb),
            RecorderService(self.recording, cfg.data_dir / "calls", cfg.call.min_free_mb),
            CallService(self.bus, cfg, self.modem_events, self._current_modem, self._engine_service, self.readiness,
                        recording=self.recording),
            ChatService(self.bus, cfg, self._engine_service),
            LineSocketService(cfg.data_dir, self._line_call_runner),
            CallbackRequests(self.bus),
            *channel_services(cfg, loaded.secret),
            *self._web_services(loaded),
        ]

    def _web_services(self, loaded: LoadedConfig) -> list[Service]:
        cfg = loaded.settings
        if not cfg.web.enabled:
            return []
        return [WebService(cfg, self.config_path, bus_login(cfg.mqtt, WEB, loaded.secret), self._browser_call_runner)]

    def _call_service(self) -> CallService | None:
        if CallService.name not in self.supervisor.names:
            return None
        service = self.supervisor.service(CallService.name)
        return service if isinstance(service, CallService) else None

    def _line_call_runner(self) -> LineCallRunner | None:
        return self._line_call if self._call_service() is not None else None

    def _browser_call_runner(self) -> BrowserCallRunner | None:
        return self._browser_call if self._call_service() is not None else None

    async def _line_call(self, session: Any, on_event: Callable[[dict[str, Any]], None], *, caller: str | None,
                         channel: str, persona: str | None) -> str:
        """A streamed call on the call service that takes calls now (during a reload: the one replacing it)."""
        while True:
            service = self._call_service()
            if service is None:
                raise CommandError("unavailable", "the call service is not running")
            try:
                return await service.line_call(session, on_event, caller=caller, channel=channel, persona=persona)
            except CallServiceDraining:
                await self._call_service_replaced(service)

    async def _browser_call(self, session: Any, on_event: Callable[[dict[str, Any]], None]) -> str:
        return await self._line_call(session, on_event, caller=None, channel="browser", persona=None)

    async def _call_service_replaced(self, draining: CallService) -> None:
        """Wait (within ``call.max_answer_wait_s``) until a reload has put another call service in its place."""
        bound = self.loaded.settings.call.max_answer_wait_s
        deadline = time.monotonic() + bound
        while self._call_service() is draining:
            if time.monotonic() >= deadline:
                raise CommandError("unavailable", "the call service is still finishing a call before a settings "
                                                  "change takes effect; try again in a moment")
            await asyncio.sleep(0.1)

    def _may_answer(self, call_id: str) -> bool:
        """The modem asks before it answers: the running call service decides (no call service: ring on)."""
        if CallService.name not in self.supervisor.names:
            return False
        service = self.supervisor.service(CallService.name)
        if not isinstance(service, CallService):
            return False
        try:
            return service.may_answer(call_id)
        except Exception:  # the driver's state machine must not die of it: answer, as without the gate
            log.exception("could not tell whether the box can speak; answering", extra={"call_id": call_id})
            return True

    def _current_modem(self) -> Sim7600Modem | None:
        service = self.supervisor.service(ModemService.name)
        return service.modem if isinstance(service, ModemService) else None

    def _engine_service(self, name: str) -> EngineService[Any] | None:
        if name not in self.supervisor.names:
            return None
        service = self.supervisor.service(name)
        return service if isinstance(service, EngineService) else None

    def _healthy(self) -> bool:
        # The supervisor must be alive enough to have a report for every service.
        return all(r.state is not ServiceState.STOPPED for r in self.supervisor.reports().values()) or self._stop.is_set()

    def _on_report(self, report: ServiceReport) -> None:
        self.bus.publish_state(service_state(report.name), report.as_payload())
        self.notifier.status(self.status_line())

    def status_line(self) -> str:
        parts = [f"{name} {r.state.value}" for name, r in self.supervisor.reports().items()]
        return ", ".join(parts)

    # -- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        cfg = self.loaded.settings
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        for service in self.build_services(self.loaded):
            self.supervisor.add(service)
        self.bus.register_command(RELOAD, self._reload_command)
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            self._install_signals(loop)
            announcing: asyncio.Task[None] | None = None
            try:
                supervising = tasks.create_task(self.supervisor.run(), name="supervisor")
                announcing = tasks.create_task(self._announce_ready(), name="announce-ready")
                log.info("secretaryd started", extra={"box_id": cfg.box_id, "services": self.supervisor.names})
                await self._stop.wait()
                self.notifier.stopping()
                log.info("stopping")
                for _, waiting in self._replacing.values():  # the daemon goes: no reload's replacement follows
                    waiting.cancel()
                await self.supervisor.wind_down(WIND_DOWN_BUDGET_S)
                self.supervisor.stop()
                done, _ = await asyncio.wait({supervising}, timeout=STOP_BUDGET_S)
                if not done:
                    log.error("services did not stop within the budget; leaving anyway", extra={"budget_s": STOP_BUDGET_S})
                    supervising.cancel()
            finally:
                self._remove_signals(loop)
                if announcing is not None:
                    announcing.cancel()
        self.notifier.close()
        log.info("secretaryd stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _announce_ready(self) -> None:
        if not await self.supervisor.wait_started(STARTUP_TIMEOUT_S):
            log.warning("some services are still starting; reporting ready anyway")
        self.notifier.ready(self.status_line())
        log.info("ready", extra={"status": self.status_line()})

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload_from_signal)

    @staticmethod
    def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    # -- reload ---------------------------------------------------------------------
    def _reload_from_signal(self) -> None:
        if self._tasks is not None and not self._stop.is_set():
            self._tasks.create_task(self.reload(), name="reload")

    async def _reload_command(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self._tasks is not None
        # Owned by the app, not by the bus: a reload may restart the bus itself.
        return await asyncio.shield(self._tasks.create_task(self.reload(), name="reload"))

    async def _replace_soon(self, service: Service) -> None:
        await asyncio.sleep(0.2)
        await self.supervisor.replace(service)

    async def _replace_after_live_work(self, service: Service, earlier: asyncio.Task[None] | None) -> None:
        """A reload's replacement of a service with live calls: they finish on it, then the new one starts."""
        if earlier is not None:  # an earlier reload's replacement of the same service goes first
            await asyncio.wait({earlier})
        try:
            await self.supervisor.replace(service, drain=True)
        except Exception:  # noqa: BLE001 - owned by the app's task group, which must not die of it
            log.exception("could not replace a service after its live calls", extra={"service": service.name})
        else:
            log.info("service replaced after its live calls", extra={"service": service.name})
        finally:
            if self._replacing.get(service.name, (None, None))[1] is asyncio.current_task():
                del self._replacing[service.name]

    async def reload(self) -> dict[str, Any]:
        if self.config_path is None:
            return {"applied": False, "errors": ["no config file to reload (started with embedded defaults)"]}
        self.notifier.reloading()
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("reload refused: config invalid", extra={"problem": str(issue)})
            self.notifier.ready(self.status_line())
            return {"applied": False, "errors": [str(issue) for issue in exc.issues]}
        old = self.loaded.settings
        needs_restart = [key for key in ("box_id", "data_dir") if getattr(old, key) != getattr(new.settings, key)]
        if old.mqtt.topic_prefix != new.settings.mqtt.topic_prefix:
            needs_restart.append("mqtt.topic_prefix")
        if old.audio.realtime_priority != new.settings.audio.realtime_priority:
            needs_restart.append("audio.realtime_priority")
        configure_logging(new.settings.log)
        restarted: list[str] = []
        after_calls: list[str] = []  # restarted once their live calls have ended
        services = self.build_services(new)
        wanted = {service.name for service in services}
        for name in [n for n in self.supervisor.names if n not in wanted]:
            restarted.append(name)
            await self.supervisor.remove(name)
        for service in services:
            if service.name not in self.supervisor.names:
                restarted.append(service.name)
                self.supervisor.add(service)
                continue
            current = self.supervisor.service(service.name)
            waiting = self._replacing.get(service.name)
            if waiting is not None and waiting[1].done():
                waiting = None
            # Compared with what will run: a replacement still waiting for live calls, else the running one.
            if (waiting[0] if waiting is not None else current).config_slice() == service.config_slice():
                continue
            restarted.append(service.name)
            if service.name == BusConnection.name and self._tasks is not None:
                # Let the reply to cmd/reload leave on the old connection first.
                self._tasks.create_task(self._replace_soon(service), name="replace-bus")
            elif self._tasks is not None and (waiting is not None or current.busy()):
                # A live call finishes on the running service; the new one starts when it is over.
                after_calls.append(service.name)
                task = self._tasks.create_task(
                    self._replace_after_live_work(service, waiting[1] if waiting is not None else None),
                    name=f"replace-{service.name}",
                )
                self._replacing[service.name] = (service, task)
            else:
                await self.supervisor.replace(service)
        self.loaded = new
        self.notifier.ready(self.status_line())
        log.info("config reloaded", extra={"restarted": restarted, "after_live_calls": after_calls,
                                           "needs_daemon_restart": needs_restart})
        return {"applied": True, "restarted": restarted, "after_live_calls": after_calls,
                "needs_daemon_restart": needs_restart}

"""The process's own life: services, the supervisor that restarts them, logging, systemd and D-Bus.

Every long-running part of the box is a ``Service`` (``service.py``); the
``Supervisor`` (``supervisor.py``) starts them, restarts a crashed one with
backoff, reloads the ones whose config slice changed and stops them all
cleanly. systemd hears from the process through ``systemd_notify.py``
(READY, STATUS, the watchdog) and is asked about units through
``systemd_units.py`` over ``system_dbus.py``; ``logging_setup.py`` makes one
line per event and ``loop_priority.py`` can lift the event loop that runs the
line clock to SCHED_FIFO. ``heap_trace.py`` is a diagnostic: with
``SECRETARY_TRACEMALLOC`` set, tracemalloc runs and SIGUSR2 writes a heap
snapshot (``bench/soak.py`` compares two)::

    config -> Supervisor -> Service.run(status) -> ServiceReport -> systemd_notify (READY/STATUS/WATCHDOG)

Nothing here knows about calls, the modem or MQTT.
"""

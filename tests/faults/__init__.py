"""Fault tests of issue 18: the box's own life (start-up, crash, restart, stop, a full disk), over the simulator and the real broker."""

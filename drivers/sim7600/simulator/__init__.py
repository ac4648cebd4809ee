"""A simulated SIM7600G-H on pseudo-terminals (see ``SimulatedModem``; CLI: ``python -m drivers.sim7600.simulator``)."""

from drivers.sim7600.simulator.call_audio import read_pcm_wav, write_pcm_wav
from drivers.sim7600.simulator.sim_config import SimulatorConfig
from drivers.sim7600.simulator.sim_modem import SimulatedModem, SimulatorError
from drivers.sim7600.simulator.sim_state import SentSms

__all__ = ["SentSms", "SimulatedModem", "SimulatorConfig", "SimulatorError", "read_pcm_wav", "write_pcm_wav"]

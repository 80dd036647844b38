"""Digital-twin simulator: every configured device served as a real SNMP/Modbus endpoint."""

from pue_monitor.simulator.runner import Simulator
from pue_monitor.simulator.serve import run_simulator

__all__ = ["Simulator", "run_simulator"]

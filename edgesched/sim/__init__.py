"""The discrete-event simulator (ARCHITECTURE §4)."""

from __future__ import annotations

from edgesched.sim.arrivals import Workload, build_workload
from edgesched.sim.capacity import capacity_rps
from edgesched.sim.engine import ENGINE_KIND, Engine, PolicyDecisionError
from edgesched.sim.interference import InterferenceModel, NoInterference, ParametricInterference
from edgesched.sim.kernel import NORMAL, URGENT, Kernel
from edgesched.sim.power import PowerModel
from edgesched.sim.runner import Result, simulate

__all__ = [
    "ENGINE_KIND",
    "NORMAL",
    "URGENT",
    "Engine",
    "InterferenceModel",
    "Kernel",
    "NoInterference",
    "ParametricInterference",
    "PolicyDecisionError",
    "PowerModel",
    "Result",
    "Workload",
    "build_workload",
    "capacity_rps",
    "simulate",
]

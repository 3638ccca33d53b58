"""The facility simulator: scenarios, a seeded model of Colossus 1, its events and ground truth.

See docs/SIM.md. The producer (:mod:`sim.producer`, kafka-python) is not imported here.
"""

from __future__ import annotations

from sim.engine import Simulator
from sim.eventlog import EventLogWriter, read_eventlog
from sim.run import MemorySink, RunResult, simulate
from sim.scenario import ScenarioError, list_scenarios, load_scenario
from sim.summary import Summary, summarize
from sim.truth import TruthTable

__all__ = [
    "EventLogWriter",
    "MemorySink",
    "RunResult",
    "ScenarioError",
    "Simulator",
    "Summary",
    "TruthTable",
    "list_scenarios",
    "load_scenario",
    "read_eventlog",
    "simulate",
    "summarize",
]

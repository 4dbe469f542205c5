"""The simulator: scenario files run through the real engine in virtual time."""

from statecore.sim.runner import Line, SimResult, Simulation, run_scenario
from statecore.sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = [
    "Line",
    "Scenario",
    "ScenarioError",
    "SimResult",
    "Simulation",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
]

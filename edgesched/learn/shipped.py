"""The trained routing policies that ship inside the package.

``edgesched/learn/policies/<scenario name>.npz`` is the policy trained for a built-in scenario;
``default.npz`` (trained on the default cluster and scenario) answers for every other name. Each
file's ``meta`` records the command that rebuilt it (``NodeScorer.load(path).meta["command"]``).
"""

from __future__ import annotations

from pathlib import Path

POLICY_DIR = Path(__file__).with_name("policies")
DEFAULT = "default"


def policy_for(scenario_name: str = DEFAULT) -> Path:
    """The shipped policy file for ``scenario_name``, else the default one."""
    path = POLICY_DIR / f"{scenario_name}.npz"
    return path if path.is_file() else POLICY_DIR / f"{DEFAULT}.npz"

"""Scenarios: what load reaches the cluster (``scenario.yaml``).

A scenario names the models requested, their share of requests and latency SLOs, an arrival
process and its mean rate — either absolute (``rate_rps``) or relative to the cluster's capacity
(``load``, e.g. 0.7 for 70 %).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgesched.core.yamlio import load_yaml, parse_yaml


class ModelLoad(BaseModel):
    """One model's share of the requests and its SLO.

    Attributes:
        weight: relative share of requests (normalised over all models).
        slo_s: latency deadline in seconds, from arrival to answer.
        input_bytes: bytes sent per request; default: the model's raw uint8 input size.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weight: float = Field(gt=0)
    slo_s: float = Field(gt=0)
    input_bytes: int | None = Field(default=None, ge=0)


class PoissonArrivals(BaseModel):
    """Memoryless arrivals at a constant mean rate."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["poisson"] = "poisson"


class MmppState(BaseModel):
    """One state of a Markov-modulated Poisson process.

    Attributes:
        rate_factor: arrival rate in this state relative to the others (normalised so that the
            long-run mean equals the scenario's rate).
        mean_dwell_s: mean time spent in this state before switching (exponential).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rate_factor: float = Field(ge=0)
    mean_dwell_s: float = Field(gt=0)


class MmppArrivals(BaseModel):
    """Bursty arrivals: a Poisson process whose rate switches between states."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["mmpp"]
    states: list[MmppState] = Field(min_length=2)

    @model_validator(mode="after")
    def _some_rate(self) -> MmppArrivals:
        if not any(s.rate_factor > 0 for s in self.states):
            raise ValueError("at least one MMPP state needs rate_factor > 0")
        return self


class TraceArrivals(BaseModel):
    """Replay of a CSV trace with columns ``time_s,model`` and optionally ``slo_s,input_bytes``.

    A relative ``path`` is resolved against the scenario file's folder.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["trace"]
    path: str


class NodeSlowdown(BaseModel):
    """From a moment on, one node computes ``factor`` times slower than its profile says.

    Models thermal throttling, a board swapped for a slower one, or a noisy neighbour. A later
    entry for the same node replaces the factor (1.0 restores full speed). Routing policies are
    not told: only what they measure shows it.

    Attributes:
        node: node id in the cluster file (``pi5-1`` for the first of ``count: 2``).
        at_s: when, in seconds after the first arrival, or
        at_fraction: when, as a fraction of the span of arrivals (0.5 = halfway).
        factor: computation time multiplier, > 0 (3.0 = three times slower).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    node: str
    at_s: float | None = Field(default=None, ge=0)
    at_fraction: float | None = Field(default=None, ge=0, le=1)
    factor: float = Field(gt=0)

    @model_validator(mode="after")
    def _one_time(self) -> NodeSlowdown:
        if (self.at_s is None) == (self.at_fraction is None):
            raise ValueError("give exactly one of at_s or at_fraction")
        return self


Arrivals = Annotated[PoissonArrivals | MmppArrivals | TraceArrivals, Field(discriminator="kind")]


class ScenarioConfig(BaseModel):
    """The contents of ``scenario.yaml``.

    Attributes:
        name: scenario name for reports.
        seed: seed of every random draw in the run.
        requests: number of requests to simulate (a trace stops earlier if shorter).
        models: model name → share and SLO.
        arrivals: the arrival process.
        rate_rps: mean arrival rate in requests per second, or
        load: mean arrival rate as a fraction of the cluster's estimated capacity.
        slowdowns: nodes that become slower (or faster again) during the run.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = "scenario"
    seed: int = Field(default=0, ge=0)
    requests: int = Field(ge=1, le=1_000_000_000)
    models: dict[str, ModelLoad] = Field(min_length=1)
    arrivals: Arrivals = Field(default_factory=PoissonArrivals)
    rate_rps: float | None = Field(default=None, gt=0)
    load: float | None = Field(default=None, gt=0)
    slowdowns: list[NodeSlowdown] = Field(default_factory=list)
    base_dir: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_rate(self) -> ScenarioConfig:
        if isinstance(self.arrivals, TraceArrivals):
            if self.rate_rps is not None or self.load is not None:
                raise ValueError("a trace sets its own times: give neither rate_rps nor load")
        elif (self.rate_rps is None) == (self.load is None):
            raise ValueError(
                "give exactly one of rate_rps (requests/s) or load (share of capacity)"
            )
        return self

    @classmethod
    def load_file(cls, path: str | Path) -> ScenarioConfig:
        """Load and validate ``scenario.yaml``.

        Raises:
            ConfigError: the file is unreadable or invalid; the message names file, line, field.
        """
        config = load_yaml(path, cls)
        config.base_dir = Path(path).resolve().parent
        return config

    @classmethod
    def parse(cls, text: str, source: str = "<scenario>") -> ScenarioConfig:
        """Like :meth:`load_file`, from YAML text."""
        return parse_yaml(text, cls, source=source)

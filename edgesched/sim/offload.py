"""Confidence offload in the simulator: which pairs offload, to where, decided by which policy.

The pairs come from the cluster file's ``serving.offload`` section, the one ``edgesched serve``
offloads by (``digits-edge: {cloud_model: digits-cloud, threshold: 0.8}``), so a simulated and a
served cluster offload the same models to the same place, and the pair's ``threshold`` is the
``threshold`` policy's default θ in both. What the simulator adds is the *answer*: for each
request an edge node finishes, it draws one input of the pair's measured
:class:`~edgesched.core.confidence.ConfidenceSample` (the edge confidence and whether each model
got that input right), so accuracy, offload rate and the extra cloud traffic follow the real
models' confidence distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.confidence import ConfidenceSample, find_sample
from edgesched.errors import ConfigError
from edgesched.policies import make
from edgesched.policies.offload import OffloadContext, OffloadPolicy
from edgesched.policies.route import UniformStream
from edgesched.sim.arrivals import Workload


@dataclass(frozen=True)
class OffloadSpec:
    """How a simulation offloads.

    Attributes:
        policy: ``offload`` policy name (``never``, ``always``, ``threshold``,
            ``accuracy-target``); one instance decides for each pair.
        kwargs: the policy's arguments, e.g. ``{"theta": 0.9}`` or ``{"target": 0.97}``.
        samples: measured samples to use before the shipped ones (matched by model pair).
    """

    policy: str = "threshold"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    samples: Sequence[ConfidenceSample] = ()


@dataclass
class OffloadPair:
    """One edge model's offload, resolved to indices for the engine.

    Attributes:
        edge_model: index of the edge model in the engine's model names.
        cloud_model: index of the cloud model.
        cloud_nodes: cloud nodes serving the cloud model (an offload goes to the least loaded).
        policy: the reset policy deciding for this pair.
        confidence, edge_correct, cloud_correct: the measured sample, as lists.
    """

    edge_model: int
    cloud_model: int
    cloud_nodes: list[int]
    policy: OffloadPolicy
    confidence: list[float]
    edge_correct: list[int]
    cloud_correct: list[int]


@dataclass
class OffloadPlan:
    """Every pair of a run, plus the stream that picks which measured input each answer is."""

    pairs: list[OffloadPair]
    draws: UniformStream


def plan_offload(
    cluster: Cluster, workload: Workload, spec: OffloadSpec, rng: np.random.Generator
) -> tuple[Workload, OffloadPlan]:
    """Resolve ``spec`` for ``cluster`` and the models ``workload`` requests.

    Returns the workload with the cloud models appended to its model names (the engine must
    know them; no request asks for them directly) and the plan.

    Raises:
        ConfigError: the cluster offloads none of the requested models, a pair's cloud model
            runs on no cloud node, no measured sample matches a pair, or the policy rejects it.
        UnknownNameError: unknown policy name.
    """
    offload = {m: o for m, o in cluster.serving.offload.items() if m in workload.model_names}
    if not offload:
        raise ConfigError(
            f"cluster {cluster.name!r} offloads none of the requested models "
            f"{list(workload.model_names)}: add serving.offload.<edge model>: "
            "{cloud_model: <model on a cloud node>, threshold: <θ>} to the cluster file"
        )
    names = list(workload.model_names)
    sizes = workload.model_input_bytes.tolist()
    policy_rng, draw_rng = rng.spawn(2)
    pairs = []
    for edge, off in offload.items():
        cloud = off.cloud_model or edge
        nodes = [n.index for n in cluster.nodes if n.is_cloud and n.models.get(cloud, 0) > 0]
        if not nodes:
            raise ConfigError(
                f"serving.offload.{edge}: no cloud node serves {cloud!r}; deploy it on a node "
                "whose device is a cloud server, or remove the offload"
            )
        if cloud not in names:
            names.append(cloud)
            sizes.append(sizes[names.index(edge)])
        sample = find_sample(edge, cloud, spec.samples)
        policy: OffloadPolicy = make("offload", spec.policy, **spec.kwargs)
        policy.reset(OffloadContext(edge, cloud, off.threshold, sample), policy_rng)
        pairs.append(
            OffloadPair(
                names.index(edge),
                names.index(cloud),
                nodes,
                policy,
                list(sample.confidence),
                [int(c) for c in sample.edge_correct],
                [int(c) for c in sample.cloud_correct],
            )
        )
    extended = replace(
        workload,
        model_names=tuple(names),
        model_input_bytes=np.asarray(sizes, dtype=workload.model_input_bytes.dtype),
    )
    return extended, OffloadPlan(pairs, UniformStream(draw_rng))

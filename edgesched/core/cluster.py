"""Clusters: nodes, links and the cloud, loaded from and saved to ``cluster.yaml``.

A cluster file names catalog devices and models; :meth:`Cluster.load` validates the file against
the catalog and builds the runtime :class:`Cluster`, whose nodes are numbered in file order
(a node with ``count: n`` expands to ``<id>-0`` … ``<id>-<n-1>``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edgesched.core.serving import NodeServing, ServingConfig
from edgesched.core.yamlio import load_yaml, parse_yaml
from edgesched.errors import ConfigError

if TYPE_CHECKING:
    from edgesched.catalog import Catalog
    from edgesched.core.specs import DeviceSpec, Profile
    from edgesched.profile.schema import ProfileFile


MAX_NODES = 100_000
"""Most nodes a cluster may have (a ``count`` beyond this is a typo, not a fleet)."""
MAX_INSTANCES = 1000
"""Most concurrent instances of one model on one node."""


def _check_known(kind: str, name: str, known: Mapping[str, Any]) -> None:
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint}")


class LinkConfig(BaseModel):
    """A network link between the gateway where requests enter and the nodes attached to it.

    Attributes:
        id: link name, referred to by nodes.
        bandwidth_bytes_per_s: capacity in bytes per second.
        rtt_s: round-trip time in seconds, paid once per request (request out, answer back).
        shared: when true, concurrent transfers split the bandwidth equally (a WAN uplink);
            when false each transfer gets the whole bandwidth (a switched LAN port per node).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1)
    bandwidth_bytes_per_s: float = Field(gt=0)
    rtt_s: float = Field(ge=0)
    shared: bool = False


class NodeConfig(BaseModel):
    """One node (or ``count`` identical nodes) of the cluster.

    Attributes:
        id: node name (a prefix when ``count`` > 1).
        device: catalog device name.
        count: how many identical nodes this entry stands for.
        models: model name → number of concurrent instances deployed.
        link: id of the link that carries requests to this node; ``None`` means requests
            arrive on the node itself (no transfer).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1)
    device: str
    count: int = Field(default=1, ge=1, le=MAX_NODES)
    models: dict[str, int] = Field(min_length=1)
    link: str | None = None

    @field_validator("device")
    @classmethod
    def _device_known(cls, v: str, info: ValidationInfo) -> str:
        catalog = (info.context or {}).get("catalog")
        if catalog is not None:
            _check_known("device", v, catalog.devices)
        return v

    @field_validator("models")
    @classmethod
    def _models_known(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        catalog = (info.context or {}).get("catalog")
        for name, n in v.items():
            if catalog is not None:
                _check_known("model", name, catalog.models)
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_INSTANCES:
                raise ValueError(
                    f"model {name!r} needs between 1 and {MAX_INSTANCES} instances, got {n!r}"
                )
        return v


class InterferenceConfig(BaseModel):
    """Which interference model the simulator uses.

    Attributes:
        kind: ``parametric`` (per-device-class slowdown, the default) or ``none``.
        alpha_scale: multiplies every device's interference coefficient (sensitivity studies).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["parametric", "none"] = "parametric"
    alpha_scale: float = Field(default=1.0, ge=0)


class ClusterConfig(BaseModel):
    """The contents of ``cluster.yaml``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = "cluster"
    nodes: list[NodeConfig] = Field(min_length=1)
    links: list[LinkConfig] = Field(default_factory=list)
    interference: InterferenceConfig = Field(default_factory=InterferenceConfig)
    profiles: list[str] = Field(default_factory=list)
    serving: ServingConfig = Field(default_factory=ServingConfig)

    @model_validator(mode="after")
    def _check_refs(self) -> ClusterConfig:
        link_ids = [link.id for link in self.links]
        if len(set(link_ids)) != len(link_ids):
            raise ValueError(f"link ids must be unique, got {link_ids}")
        total = sum(node.count for node in self.nodes)
        if total > MAX_NODES:
            raise ValueError(f"the cluster has {total} nodes; at most {MAX_NODES} are supported")
        ids: set[str] = set()
        for node in self.nodes:
            for nid in _expand_ids(node):
                if nid in ids:
                    raise ValueError(f"node id {nid!r} appears twice")
                ids.add(nid)
            if node.link is not None and node.link not in link_ids:
                raise ValueError(f"node {node.id!r} names link {node.link!r}, not in {link_ids}")
        _check_serving(self, ids | {node.id for node in self.nodes})
        return self


def _check_serving(config: ClusterConfig, node_ids: set[str]) -> None:
    """The ``serving:`` section names only nodes and models of this cluster."""
    deployed = {m for node in config.nodes for m in node.models}
    serving = config.serving
    for section, names in (
        ("model_files", serving.model_files),
        ("batching", serving.batching),
        ("offload", serving.offload),
        ("slo_s", serving.slo_s),
    ):
        for name in names:
            if name not in deployed:
                raise ValueError(
                    f"serving.{section} names model {name!r}, which no node deploys "
                    f"(deployed: {sorted(deployed)})"
                )
    for nid in serving.nodes:
        _check_known("node", nid, dict.fromkeys(node_ids))
    for name, off in serving.offload.items():
        target = off.cloud_model or name
        if target not in deployed:
            raise ValueError(
                f"serving.offload.{name}.cloud_model {target!r} is deployed on no node"
            )


def _expand_ids(node: NodeConfig) -> list[str]:
    return [node.id] if node.count == 1 else [f"{node.id}-{i}" for i in range(node.count)]


@dataclass(frozen=True)
class Link:
    """A network link (see :class:`LinkConfig`); ``index`` is its position in the cluster."""

    id: str
    index: int
    bandwidth_bytes_per_s: float
    rtt_s: float
    shared: bool


@dataclass(frozen=True)
class Node:
    """One device instance in a cluster, with the model instances deployed on it."""

    id: str
    index: int
    device: DeviceSpec
    models: Mapping[str, int]
    link: Link | None
    entry: str = ""  # id of the cluster.yaml entry this node comes from (its own id if count 1)

    @property
    def is_cloud(self) -> bool:
        """True for datacenter servers."""
        return self.device.kind == "cloud"


@dataclass(frozen=True)
class Cluster:
    """Nodes, links and the catalog they were resolved against."""

    name: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    catalog: Catalog
    interference: InterferenceConfig = field(default_factory=InterferenceConfig)
    measured: tuple[ProfileFile, ...] = ()
    serving: ServingConfig = field(default_factory=ServingConfig)
    base_dir: Path | None = None

    def model_file(self, model: str) -> str:
        """What a worker loads for ``model``: its ONNX file from ``serving.model_files``
        (relative paths resolved against the cluster file's folder), else the zoo name."""
        path = self.serving.model_files.get(model)
        if path is None:
            return model
        if self.base_dir is not None and not Path(path).is_absolute():
            return str(self.base_dir / path)
        return path

    def node_serving(self, node: Node) -> NodeServing:
        """How ``node``'s worker runs: its own ``serving.nodes`` entry, else its config
        entry's (the ``count`` nodes of one entry share it), else the defaults."""
        nodes = self.serving.nodes
        return nodes.get(node.id) or nodes.get(node.entry) or NodeServing()

    @property
    def model_names(self) -> tuple[str, ...]:
        """Every model deployed somewhere, in order of first appearance."""
        seen: dict[str, None] = {}
        for node in self.nodes:
            seen.update(dict.fromkeys(node.models))
        return tuple(seen)

    def profile(self, node: Node, model: str) -> Profile:
        """The best known profile of ``model`` on ``node``'s device."""
        return self.catalog.profile(node.device.name, model)

    def with_measured(self, profiles: Sequence[ProfileFile]) -> Cluster:
        """This cluster calibrated from measured profiles.

        Measured solo latencies and batch slopes override the catalog's published and estimated
        ones for the profiled device and models, and the simulator's interference model answers
        from the measured matrices (:class:`edgesched.profile.fit.MeasuredInterference`).

        Raises:
            ConfigError: a profile names a device the catalog does not know.
        """
        from edgesched.profile.fit import catalog_profiles

        measured = []
        for p in profiles:
            if p.device not in self.catalog.devices:
                raise ConfigError(
                    f"profile of device {p.device!r} cannot calibrate this cluster: the catalog "
                    f"has no such device (profile with --name set to one of: "
                    f"{', '.join(sorted(self.catalog.devices))})"
                )
            measured.extend(catalog_profiles(p, self.catalog))
        catalog = self.catalog.with_profiles(measured)
        return replace(self, catalog=catalog, measured=(*self.measured, *profiles))

    @classmethod
    def from_config(
        cls, config: ClusterConfig, catalog: Catalog | None = None, base_dir: Path | None = None
    ) -> Cluster:
        """Build a cluster from a validated config, resolving names in ``catalog`` and
        relative file paths against ``base_dir``."""
        if catalog is None:
            from edgesched.catalog import load_catalog

            catalog = load_catalog()
        links = tuple(
            Link(lc.id, i, lc.bandwidth_bytes_per_s, lc.rtt_s, lc.shared)
            for i, lc in enumerate(config.links)
        )
        by_id = {link.id: link for link in links}
        nodes: list[Node] = []
        for nc in config.nodes:
            device = catalog.device(nc.device)
            for nid in _expand_ids(nc):
                link = by_id[nc.link] if nc.link is not None else None
                nodes.append(Node(nid, len(nodes), device, dict(nc.models), link, nc.id))
        return cls(
            config.name,
            tuple(nodes),
            links,
            catalog,
            config.interference,
            serving=config.serving,
            base_dir=base_dir,
        )

    @classmethod
    def load(cls, path: str | Path, catalog: Catalog | None = None) -> Cluster:
        """Load and validate ``cluster.yaml``.

        Raises:
            ConfigError: the file is unreadable or invalid; the message names file, line, field.
        """
        catalog = catalog if catalog is not None else _default_catalog()
        config = load_yaml(path, ClusterConfig, context={"catalog": catalog})
        base = Path(path).resolve().parent
        cluster = cls.from_config(config, catalog, base)
        if not config.profiles:
            return cluster
        from edgesched.profile.schema import ProfileFile

        files = [base / p if not Path(p).is_absolute() else Path(p) for p in config.profiles]
        return cluster.with_measured([ProfileFile.load(f) for f in files])

    @classmethod
    def parse(cls, text: str, catalog: Catalog | None = None, source: str = "<cluster>") -> Cluster:
        """Like :meth:`load`, from YAML text."""
        catalog = catalog if catalog is not None else _default_catalog()
        config = parse_yaml(text, ClusterConfig, source=source, context={"catalog": catalog})
        return cls.from_config(config, catalog)


def _default_catalog() -> Catalog:
    from edgesched.catalog import load_catalog

    return load_catalog()

"""The network a planned cluster sits on: a switched LAN for edge nodes, a shared WAN uplink for
cloud nodes.

The links are the built-in default cluster's ``lan`` (1 Gbit/s, one port per node, 0.5 ms round
trip) and ``wan`` (100 Mbit/s shared by every transfer to the cloud, 40 ms round trip). The plan
charges each request its unloaded transfer time (round trip plus bytes over bandwidth) against the
SLO, and keeps the WAN's load within its bandwidth with the same provisioning factor as compute.
A LAN port carries one node's requests without contention in the simulator, so it adds no
capacity constraint.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from edgesched.core.cluster import ClusterConfig, LinkConfig
from edgesched.core.yamlio import load_yaml

LAN_ID = "lan"
WAN_ID = "wan"


@dataclass(frozen=True)
class Network:
    """The link of edge nodes (``lan``) and the link of cloud nodes (``wan``)."""

    lan: LinkConfig
    wan: LinkConfig

    def link(self, cloud: bool) -> LinkConfig:
        """The link that reaches a node of this kind."""
        return self.wan if cloud else self.lan

    def transfer_s(self, cloud: bool, nbytes: float) -> float:
        """Unloaded time to send ``nbytes`` to a node and get the answer, seconds."""
        link = self.link(cloud)
        return link.rtt_s + nbytes / link.bandwidth_bytes_per_s


@functools.cache
def default_network() -> Network:
    """The ``lan`` and ``wan`` links of the built-in default cluster."""
    from edgesched.bench.scenarios import default_cluster_path

    config = load_yaml(default_cluster_path(), ClusterConfig)
    links = {link.id: link for link in config.links}
    return Network(lan=links[LAN_ID], wan=links[WAN_ID])

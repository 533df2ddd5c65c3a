"""Stable-Baselines3 policies whose network scores each node with one shared perceptron.

Observations are ``[nodes, N_FEATURES + 1]`` (the last column masks the nodes that serve the
request). :class:`NodeMLP` applies the same perceptron to every node row, so its weights do not
depend on the cluster's size and export to :class:`~edgesched.learn.scorer.NodeScorer` as they
are. :class:`NodeQPolicy` plugs it into DQN (masked nodes get a very low value) and
:class:`NodeActorCriticPolicy` into MaskablePPO (per-node logits; the value pools the hidden
layer over the valid nodes).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from edgesched.learn.features import CORRECTION, ESTIMATE, HARM, N_FEATURES
from edgesched.learn.scorer import NodeScorer

#: Starting weights, relative to the estimate's, in the linear part of the delay a placement adds
#: to co-runners (1 would rank by "own expected completion plus the delay caused") and of the
#: node's learned correction (1 would trust it fully); see edgesched.learn.features.
EXTERNALITY = 1.5
TRUST = 0.5

#: Value given to nodes that cannot serve the request (never chosen by argmax).
_MASKED = -1e6


class NodeMLP(nn.Module):
    """Per-node score: a linear part plus a ReLU perceptron ``N_FEATURES → hidden… → 1``.

    The linear part starts as ``-prior × (estimate + EXTERNALITY × harm + TRUST ×
    correction)`` (feature columns 0, 10 and 9): the log of the ``min-expected-completion``
    estimate, the delay the placement adds to the requests computing there, and the node's
    learned correction. With the
    perceptron's output layer near zero, training starts from that ranking and learns where and
    how far to depart from it.
    """

    def __init__(self, hidden: tuple[int, ...] = (32,), prior: float = 0.0) -> None:
        super().__init__()
        sizes = (N_FEATURES, *hidden)
        self.body = nn.Sequential(
            *[m for a, b in pairwise(sizes) for m in (nn.Linear(a, b), nn.ReLU())]
        )
        self.head = nn.Linear(sizes[-1], 1)
        self.skip = nn.Linear(N_FEATURES, 1, bias=False)
        with th.no_grad():
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
            self.skip.weight.zero_()
            self.skip.weight[0, ESTIMATE] = -prior
            self.skip.weight[0, HARM] = -prior * EXTERNALITY
            self.skip.weight[0, CORRECTION] = -prior * TRUST
        self.hidden_dim = sizes[-1]

    def split(self, flat: th.Tensor, n_nodes: int) -> tuple[th.Tensor, th.Tensor]:
        """Feature rows ``[batch, nodes, N_FEATURES]`` and the mask ``[batch, nodes]``."""
        obs = flat.reshape(flat.shape[0], n_nodes, N_FEATURES + 1)
        return obs[..., :N_FEATURES], obs[..., N_FEATURES] > 0.5

    def forward(self, rows: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(scores ``[batch, nodes]``, hidden ``[batch, nodes, hidden]``)."""
        h = self.body(rows)
        return (self.head(h) + self.skip(rows)).squeeze(-1), h

    def export(self, kind: str, meta: dict[str, Any]) -> NodeScorer:
        """The numpy scorer with these weights."""
        layers = [m for m in self.body if isinstance(m, nn.Linear)] + [self.head]
        weights = [
            (
                m.weight.detach().cpu().numpy().T.astype(np.float64),
                m.bias.detach().cpu().numpy().astype(np.float64),
            )
            for m in layers
        ]
        skip = self.skip.weight.detach().cpu().numpy()[0].astype(np.float64)
        return NodeScorer(weights, kind, meta, skip)


class _NodeQ(nn.Module):
    def __init__(self, n_nodes: int, hidden: tuple[int, ...], prior: float) -> None:
        super().__init__()
        self.n_nodes = n_nodes
        self.mlp = NodeMLP(hidden, prior)

    def forward(self, flat: th.Tensor) -> th.Tensor:
        rows, mask = self.mlp.split(flat, self.n_nodes)
        q, _ = self.mlp(rows)
        return th.where(mask, q, th.full_like(q, _MASKED))


class NodeQNetwork(QNetwork):
    """DQN's Q-network with a shared per-node perceptron."""

    def __init__(
        self, *args: Any, hidden: tuple[int, ...] = (32,), prior: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.q_net = _NodeQ(int(self.action_space.n), hidden, prior)


class NodeQPolicy(DQNPolicy):
    """DQN policy built on :class:`NodeQNetwork` (``policy_kwargs={"hidden": …, "prior": …}``)."""

    def __init__(
        self, *args: Any, hidden: tuple[int, ...] = (32,), prior: float = 0.0, **kwargs: Any
    ) -> None:
        self.hidden, self.prior = hidden, prior
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> NodeQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return NodeQNetwork(**net_args, hidden=self.hidden, prior=self.prior).to(self.device)


class _NodeExtractor(nn.Module):
    """MaskablePPO's extractor: per-node logits for the actor, pooled hidden for the critic."""

    def __init__(self, n_nodes: int, hidden: tuple[int, ...], prior: float) -> None:
        super().__init__()
        self.n_nodes = n_nodes
        self.mlp = NodeMLP(hidden, prior)
        self.latent_dim_pi = n_nodes
        self.latent_dim_vf = self.mlp.hidden_dim

    def forward(self, flat: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(flat), self.forward_critic(flat)

    def forward_actor(self, flat: th.Tensor) -> th.Tensor:
        rows, _ = self.mlp.split(flat, self.n_nodes)
        return self.mlp(rows)[0]

    def forward_critic(self, flat: th.Tensor) -> th.Tensor:
        rows, mask = self.mlp.split(flat, self.n_nodes)
        _, h = self.mlp(rows)
        w = mask.unsqueeze(-1).float()
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)


class NodeActorCriticPolicy(MaskableActorCriticPolicy):
    """MaskablePPO policy whose logits are the shared perceptron's per-node scores."""

    def __init__(
        self, *args: Any, hidden: tuple[int, ...] = (32,), prior: float = 0.0, **kwargs: Any
    ) -> None:
        self.hidden, self.prior = hidden, prior
        kwargs.setdefault("ortho_init", False)
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = _NodeExtractor(int(self.action_space.n), self.hidden, self.prior)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()  # the extractor's latent already is the logits
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


def node_mlp(model: Any) -> NodeMLP:
    """The trained :class:`NodeMLP` inside an SB3 DQN or MaskablePPO model."""
    policy = model.policy
    if isinstance(policy, NodeQPolicy):
        return policy.q_net.q_net.mlp
    if isinstance(policy, NodeActorCriticPolicy):
        return policy.mlp_extractor.mlp
    raise TypeError(f"not a node-scoring policy: {type(policy).__name__}")

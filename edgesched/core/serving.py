"""The ``serving:`` section of ``cluster.yaml``: how ``edgesched serve`` runs the cluster.

Everything here is optional; a cluster without the section is served with one intra-op thread
per instance, no CPU pinning, ONNX Runtime on the CPU, no dynamic batching and no offload::

    serving:
      model_files: {mobilenet_v2: models/mnv2.onnx}     # else the zoo model of that name
      nodes:
        pi-0: {cpus: [0], threads: 1}
        gpu: {backend: torch, device: cuda}
      batching:
        mobilenet_v2: {max_batch_size: 8, max_queue_delay_ms: 2}
      offload:
        digits-edge: {threshold: 0.8, cloud_model: digits-cloud}
      slo_s: {mobilenet_v2: 0.05}                        # deadlines the policies see
      shared_memory_free_mb: 64      # free shared memory kept for request tensors, at most
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class NodeServing(BaseModel):
    """How one node's worker runs.

    Attributes:
        cpus: logical CPUs the worker process is pinned to (None: not pinned).
        threads: intra-op threads per model instance (None: one per pinned CPU, else 1).
        backend: executor backend, ``onnxruntime`` or ``torch``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``tensorrt``.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cpus: list[int] | None = Field(default=None, min_length=1)
    threads: int | None = Field(default=None, ge=1, le=256)
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    device: str = "cpu"


class BatchingConfig(BaseModel):
    """Triton-style dynamic batching of one model in the frontend.

    Requests of the model wait until ``max_batch_size`` samples are queued or the oldest has
    waited ``max_queue_delay_ms``; then they run as one batch on one node and each gets its rows.

    Attributes:
        max_batch_size: the most samples in one formed batch.
        max_queue_delay_ms: the longest a request waits for others to join it.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_batch_size: int = Field(default=8, ge=1, le=4096)
    max_queue_delay_ms: float = Field(default=2.0, ge=0, le=10_000)


class OffloadConfig(BaseModel):
    """Confidence-based offload of one edge model to a cloud node (thesis, ECSRL).

    After an edge node answers, each sample whose top-class confidence (the largest softmax
    probability of the first output) is below ``threshold`` is sent again to a cloud node
    serving ``cloud_model``, and the cloud's answer replaces the edge's.

    Attributes:
        threshold: confidence below which a sample is offloaded, in (0, 1].
        cloud_model: the model that answers offloaded samples (None: the same model).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    threshold: float = Field(gt=0, le=1)
    cloud_model: str | None = None


class ServingConfig(BaseModel):
    """The ``serving:`` section of ``cluster.yaml`` (see the module docstring).

    Attributes:
        model_files: model name → ONNX file (relative paths: to the cluster file's folder).
        nodes: node id → how its worker runs (ids after ``count`` expansion, or the entry's id
            for all of its nodes).
        batching: model name → dynamic batching settings.
        offload: model name → confidence offload settings.
        slo_s: model name → latency deadline in seconds, given to the routing policy with each
            request and recorded with its outcome (models not named get the server's default).
        shared_memory_free_mb: MiB of shared-memory blocks the frontend keeps free for the
            tensors of later requests, at most; blocks given back beyond it are removed, so a
            burst of large requests does not keep its memory afterwards.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model_files: dict[str, str] = Field(default_factory=dict)
    nodes: dict[str, NodeServing] = Field(default_factory=dict)
    batching: dict[str, BatchingConfig] = Field(default_factory=dict)
    offload: dict[str, OffloadConfig] = Field(default_factory=dict)
    slo_s: dict[str, PositiveFloat] = Field(default_factory=dict)
    shared_memory_free_mb: float = Field(default=64.0, ge=0)

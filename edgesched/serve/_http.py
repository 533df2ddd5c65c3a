"""Pieces of the frontends that are not a server itself: model records, per-request accounting
and request checks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from edgesched.serve._datatypes import TensorSpec
from edgesched.serve.protocol import ProtocolError
from edgesched.serve.worker import ModelInfo


@dataclass
class ServedModel:
    """One served model: its view index, worker source, and what the workers reported."""

    name: str
    index: int
    source: str
    nodes: list[int]
    info: ModelInfo
    outputs: list[TensorSpec]

    @property
    def inputs(self) -> list[TensorSpec]:
        shape = tuple(-1 if d is None else d for d in self.info.input_shape)
        return [TensorSpec("input0", self.info.datatype, (-1, *shape))]


@dataclass(slots=True)
class Accounting:
    """What the metrics need of one infer request, filled in as the handler learns it."""

    start: float
    model: str = ""  # "" until the model is known to be served
    node: str = ""  # "" until the request is dispatched
    exec_s: float | None = None
    batch: int | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_batch(m: ServedModel, name: str, datatype: str, data: np.ndarray) -> np.ndarray:
    """The first input as a float32 batch of the model's sample shape, or a 400."""
    if datatype != "FP32":
        raise ProtocolError(f"input {name!r} of model {m.name!r} must be FP32; got {datatype}")
    want = m.info.input_shape
    shape = data.shape
    if (
        len(shape) != len(want) + 1
        or shape[0] < 1
        or any(w is not None and w != s for w, s in zip(want, shape[1:], strict=True))
    ):
        sample = ["any" if d is None else d for d in want]
        raise ProtocolError(
            f"input {name!r} of model {m.name!r} has shape {list(shape)}; expected "
            f"[batch ≥ 1, {', '.join(map(str, sample))}]"
        )
    if m.info.max_batch is not None and shape[0] > m.info.max_batch:
        raise ProtocolError(
            f"model {m.name!r} takes batches of at most {m.info.max_batch}; got {shape[0]}"
        )
    return data

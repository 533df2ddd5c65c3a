"""The built-in model zoo: which architectures exist, their inputs and how to build them.

Entries name a builder as an import string, resolved only when a model is built, so listing the
zoo imports neither torch nor torchvision. Weights are never downloaded: torchvision architectures
are built with random weights (timing does not depend on them); the ``digits-*`` classifiers are
trained on scikit-learn's bundled handwritten digits (:mod:`edgesched.zoo.digits`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from edgesched.errors import DependencyNotInstalled, UnknownNameError

Task = Literal["classification", "detection"]


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes:
        name: zoo name (also the catalog model name where the catalog has it).
        task: ``classification`` or ``detection``.
        input_shape: one sample, channels first.
        builder: ``"module:function"`` returning a ``torch.nn.Module``; torchvision classifiers
            are called with ``weights=None`` (random weights), other builders with no arguments.
        source: ``torchvision`` or ``digits`` (trained here on scikit-learn's digits).
    """

    name: str
    task: Task
    input_shape: tuple[int, ...]
    builder: str
    source: Literal["torchvision", "digits"]

    def build(self, **kwargs: Any) -> Any:
        """Build the ``torch.nn.Module`` (random weights for torchvision entries), in eval mode.

        Args:
            **kwargs: passed on to the builder (the ``digits-*`` builders take ``cache``, the
                folder of their trained weights).

        Raises:
            DependencyNotInstalled: torch or torchvision is missing.
        """
        module, _, attr = self.builder.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            missing = (exc.name or "torch").split(".")[0]
            raise DependencyNotInstalled(missing, "zoo") from None
        if module == "torchvision.models":
            kwargs = {"weights": None, **kwargs}
        return fn(**kwargs).eval()


_CLASSIFIERS = (
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "vit_b_16",
)
_ENTRIES = [
    *(
        ZooEntry(name, "classification", (3, 224, 224), f"torchvision.models:{name}", "torchvision")
        for name in _CLASSIFIERS
    ),
    ZooEntry(
        "ssdlite320_mobilenet_v3_large",
        "detection",
        (3, 320, 320),
        "edgesched.zoo.builders:ssdlite320_raw",
        "torchvision",
    ),
    ZooEntry(
        "digits-edge", "classification", (1, 8, 8), "edgesched.zoo.digits:edge_model", "digits"
    ),
    ZooEntry(
        "digits-cloud", "classification", (1, 8, 8), "edgesched.zoo.digits:cloud_model", "digits"
    ),
]
ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``.

    Raises:
        UnknownNameError: no such model (with close names suggested).
    """
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownNameError("zoo model", name, ZOO) from None

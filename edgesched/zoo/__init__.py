"""The model zoo: torchvision architectures exported to ONNX, and small trained classifiers."""

from __future__ import annotations

from edgesched.zoo.registry import ZOO, ZooEntry, entry

__all__ = ["ZOO", "ZooEntry", "entry"]

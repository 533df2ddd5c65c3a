"""The model zoo: torchvision architectures exported to ONNX, and small trained classifiers.

Importing this package imports neither torch nor onnx: they are loaded by the functions that
build, export or quantize a model.
"""

from __future__ import annotations

from edgesched.zoo.digits import cloud_model, edge_model, held_out, training_data
from edgesched.zoo.export import DEFAULT_OPSET, export_onnx, verify
from edgesched.zoo.metadata import (
    LayerRecord,
    ZooError,
    ZooMetadata,
    cache_dir,
    load_metadata,
)
from edgesched.zoo.quantize import quantize_int8
from edgesched.zoo.registry import ZOO, ZooEntry, entry

__all__ = [
    "DEFAULT_OPSET",
    "ZOO",
    "LayerRecord",
    "ZooEntry",
    "ZooError",
    "ZooMetadata",
    "cache_dir",
    "cloud_model",
    "edge_model",
    "entry",
    "export_onnx",
    "held_out",
    "load_metadata",
    "quantize_int8",
    "training_data",
    "verify",
]

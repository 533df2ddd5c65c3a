"""Import the zoo's optional dependencies, turning a missing one into a clear error."""

from __future__ import annotations

import importlib
from importlib import metadata
from types import ModuleType

from edgesched.errors import DependencyNotInstalled

#: Distribution name of each importable package the zoo uses.
_DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "sklearn": "scikit-learn",
}


def require(module: str) -> ModuleType:
    """Import ``module``.

    Raises:
        DependencyNotInstalled: the package is missing (install ``edgesched[zoo]``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = (exc.name or module).split(".")[0]
        raise DependencyNotInstalled(_DISTRIBUTIONS.get(top, top), "zoo") from None


def version(package: str) -> str:
    """The installed version of an importable package, without importing it (``""`` if absent)."""
    try:
        return metadata.version(_DISTRIBUTIONS.get(package, package))
    except metadata.PackageNotFoundError:
        return ""

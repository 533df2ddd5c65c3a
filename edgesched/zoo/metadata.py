"""The JSON file that sits beside every exported zoo model: what it is, what it costs, where from.

``<cache>/<name>.json`` describes ``<cache>/<name>.onnx`` (and ``<name>-int8.json`` its INT8
variant). Units: ``flops`` are FLOPs per sample with one multiply-add counted as two (as in
``catalog/data/models.yaml``); ``output_bytes`` and ``size_bytes`` are bytes; ``accuracy`` is a
fraction in [0, 1]. What the layer FLOPs count is documented in :mod:`edgesched.zoo._flops`.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgesched.errors import EdgeschedError

FORMAT = "edgesched-zoo/1"
INT8_SUFFIX = "-int8"


class ZooError(EdgeschedError):
    """A zoo model is not exported, its cached files are damaged, or an export failed its checks.

    The message names the model, the file and the fix (usually ``edgesched zoo export NAME``).
    """


def cache_dir() -> Path:
    """The zoo cache folder, created on demand.

    ``$EDGESCHED_CACHE/zoo`` when ``EDGESCHED_CACHE`` is set, else
    ``$XDG_CACHE_HOME/edgesched/zoo`` (the XDG base-directory convention), else
    ``~/.cache/edgesched/zoo``.
    """
    if os.environ.get("EDGESCHED_CACHE"):
        path = Path(os.environ["EDGESCHED_CACHE"]).expanduser() / "zoo"
    elif os.environ.get("XDG_CACHE_HOME"):
        path = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "edgesched" / "zoo"
    else:
        path = Path.home() / ".cache" / "edgesched" / "zoo"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LayerRecord(BaseModel):
    """One leaf-module call of the float model, in execution order.

    Attributes:
        name: qualified module name (repeated when a module runs more than once).
        type: the module's class name, e.g. ``Conv2d``.
        flops: FLOPs for one sample (2 per multiply-add; 0 for layers that are not counted).
        output_bytes: size of the layer's output for one sample as float32, in bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: str
    flops: int = Field(ge=0)
    output_bytes: int = Field(ge=0)


class ZooMetadata(BaseModel):
    """Metadata of one exported zoo model (FP32 or INT8).

    Attributes:
        format: file format tag, ``edgesched-zoo/1``.
        name: file name stem: the zoo name, with ``-int8`` for the quantized variant.
        base_model: the zoo entry it was built from.
        precision: ``fp32`` or ``int8``.
        quantization: how the INT8 variant was made, ``static`` or ``dynamic`` (``None`` for
            FP32); the notes give the details.
        task: ``classification`` or ``detection``.
        source: ``torchvision`` (random weights) or ``digits`` (trained here).
        input_shape: one sample, channels first; the ONNX input has a dynamic batch axis in front.
        input_name: name of the ONNX input (``input``).
        output_names: names of the ONNX outputs.
        output_shapes: shape of each output for one sample (the batch axis left out).
        params: number of parameters of the float model.
        flops: FLOPs per sample, 2 per multiply-add (the sum over ``layers``).
        opset: ONNX opset the model was exported with.
        torch, torchvision, onnx, onnxruntime: package versions that made and checked the file.
        created: when the file was written (UTC).
        file: the ONNX file's name inside the cache folder.
        size_bytes: the ONNX file's size in bytes.
        sha256: the ONNX file's SHA-256, hex.
        parent_sha256: for INT8 files, the SHA-256 of the FP32 file they were made from.
        recipe: hash of the training recipe (``digits-*`` models), else ``None``.
        accuracy: held-out accuracy measured by running this ONNX file in onnxruntime
            (``digits-*`` models), else ``None``.
        notes: free-form remarks (e.g. that a random-weight model's accuracy means nothing).
        layers: per-layer records of the float model (see :mod:`edgesched.zoo._flops`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["edgesched-zoo/1"] = FORMAT
    name: str
    base_model: str
    precision: Literal["fp32", "int8"] = "fp32"
    quantization: Literal["static", "dynamic"] | None = None
    task: Literal["classification", "detection"]
    source: Literal["torchvision", "digits"]
    input_shape: tuple[int, ...]
    input_name: str = "input"
    output_names: list[str]
    output_shapes: list[tuple[int, ...]]
    params: int = Field(ge=0)
    flops: int = Field(ge=0)
    opset: int = Field(ge=1)
    torch: str
    torchvision: str
    onnx: str
    onnxruntime: str
    created: datetime
    file: str
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    parent_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    recipe: str | None = None
    accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    notes: list[str] = Field(default_factory=list)
    layers: list[LayerRecord]


def metadata_path(name: str, cache: Path | None = None) -> Path:
    """Where the metadata of ``name`` (a zoo name, optionally with ``-int8``) lives."""
    return (cache if cache is not None else cache_dir()) / f"{name}.json"


def read_metadata(path: Path) -> ZooMetadata | None:
    """Parse a metadata file; ``None`` when it is missing, unreadable or does not validate."""
    try:
        return ZooMetadata.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def load_metadata(name: str, cache: Path | None = None) -> ZooMetadata:
    """The metadata of an exported zoo model.

    Args:
        name: a zoo name, or a zoo name with ``-int8`` for the quantized variant.
        cache: the zoo cache folder; default :func:`cache_dir`.

    Raises:
        UnknownNameError: ``name`` is not a zoo model.
        ZooError: the model has not been exported to ``cache``, or its metadata is damaged.
    """
    from edgesched.zoo.registry import entry

    base = name.removesuffix(INT8_SUFFIX)
    entry(base)  # unknown names raise with a suggestion
    command = f"edgesched zoo export {base}" + (" --int8" if name != base else "")
    path = metadata_path(name, cache)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ZooError(
            f"zoo model {name!r} is not exported in {path.parent}; run: {command}"
        ) from None
    try:
        return ZooMetadata.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            detail = f"not valid JSON: {errors[0]['msg']}"
        else:
            fields = [
                f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in errors
            ]
            more = f"; and {len(fields) - 3} more" if len(fields) > 3 else ""
            detail = "; ".join(fields[:3]) + more
        raise ZooError(
            f"{path}: metadata of zoo model {name!r} is damaged ({detail}); "
            f"re-export it with: {command} --force"
        ) from None

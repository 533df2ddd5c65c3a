"""INT8 variants of zoo models, made with onnxruntime's quantizer.

``quantize_int8("digits-cloud")`` exports the FP32 model if needed (:func:`export_onnx`), then
writes ``<cache>/digits-cloud-int8.onnx`` and its metadata. The method is static QDQ
quantization (int8 weights per output channel, int8 activations with MinMax ranges, the
combination onnxruntime's documentation recommends for x86 CPUs) after onnxruntime's
pre-processing (shape inference and graph optimisation). Calibration data: the digits training
split for ``digits-*`` models, standard-normal inputs for torchvision models (whose random
weights make any accuracy meaningless anyway). If static quantization fails, dynamic
quantization (weights only) is used instead and the metadata says so.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.zoo._deps import require, version
from edgesched.zoo.export import atomic_path, export_onnx, sha256_file, write_metadata
from edgesched.zoo.metadata import (
    INT8_SUFFIX,
    ZooError,
    ZooMetadata,
    cache_dir,
    load_metadata,
    metadata_path,
    read_metadata,
)
from edgesched.zoo.registry import entry

#: Calibration batches for torchvision models: random inputs, so a few suffice.
RANDOM_CALIBRATION_BATCHES = 8
#: Samples per calibration batch for the digits training split.
DIGITS_CALIBRATION_BATCH = 128


def _calibration(meta: ZooMetadata) -> tuple[Iterator[np.ndarray], str]:
    """Calibration batches for ``meta``'s model and a sentence saying what they are."""
    if meta.source == "digits":
        from edgesched.zoo.digits import training_data

        x, _ = training_data()
        batches = (
            x[i : i + DIGITS_CALIBRATION_BATCH] for i in range(0, len(x), DIGITS_CALIBRATION_BATCH)
        )
        return batches, f"the {len(x)} samples of the digits training split"
    rng = np.random.default_rng(0)
    shape = (1, *meta.input_shape)
    batches = (
        rng.standard_normal(shape, dtype=np.float32) for _ in range(RANDOM_CALIBRATION_BATCHES)
    )
    return batches, f"{RANDOM_CALIBRATION_BATCHES} standard-normal inputs"


def _reader(meta: ZooMetadata, batches: Iterator[np.ndarray]) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over ``batches``."""
    quant = require("onnxruntime.quantization")

    class Reader(quant.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(batches, None)
            return None if x is None else {meta.input_name: np.ascontiguousarray(x)}

    return Reader()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs advice through the root logger; keep only errors."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize(src: Path, dst: Path, meta: ZooMetadata, workdir: Path) -> tuple[str, str]:
    """Quantize ``src`` into ``dst``; returns the method (``static``/``dynamic``) and a note."""
    quant = require("onnxruntime.quantization")
    prepped, skipped = workdir / "prepped.onnx", ""
    try:
        quant.quant_pre_process(str(src), str(prepped))
    except Exception:  # symbolic shape inference fails on some graphs (ViT's reshapes)
        try:
            quant.quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
        except Exception as exc:  # pre-processing is an optimisation: quantize the plain file
            prepped, skipped = src, f"; pre-processing skipped ({type(exc).__name__}: {exc})"
    batches, what = _calibration(meta)
    try:
        quant.quantize_static(
            str(prepped),
            str(dst),
            _reader(meta, batches),
            quant_format=quant.QuantFormat.QDQ,
            per_channel=True,
            activation_type=quant.QuantType.QInt8,
            weight_type=quant.QuantType.QInt8,
            calibrate_method=quant.CalibrationMethod.MinMax,
        )
        return "static", (
            "static QDQ quantization: int8 weights per channel, int8 activations with MinMax "
            f"ranges calibrated on {what}{skipped}"
        )
    except Exception as exc:
        quant.quantize_dynamic(str(prepped), str(dst), weight_type=quant.QuantType.QUInt8)
        return "dynamic", (
            f"dynamic quantization (uint8 weights, activations quantized at run time); "
            f"static quantization failed ({type(exc).__name__}: {exc}){skipped}"
        )


def _check(path: Path, meta: ZooMetadata) -> None:
    """Run the INT8 file at batch 1 and 2 and compare output shapes with the FP32 metadata."""
    from edgesched.zoo._ort import run_onnx, session

    try:
        sess = session(path)
        for batch in (1, 2):
            x = np.zeros((batch, *meta.input_shape), dtype=np.float32)
            shapes = [tuple(o.shape) for o in run_onnx(sess, x)]
            want = [(batch, *s) for s in meta.output_shapes]
            if shapes != want:
                raise ValueError(f"at batch {batch} the outputs have shapes {shapes}, not {want}")
    except Exception as exc:
        raise ZooError(
            f"the INT8 model {meta.name}{INT8_SUFFIX} does not run in onnxruntime: {exc}; "
            "report it with the package versions (edgesched zoo list --json)"
        ) from None


def quantize_int8(name: str, *, cache: Path | None = None, force: bool = False) -> Path:
    """Write ``<cache>/<name>-int8.onnx`` and its metadata (see the module docstring).

    The FP32 export is reused when cached (``force`` does not re-export it; call
    :func:`export_onnx` with ``force=True`` for that). A cached INT8 file is reused when its
    metadata records the current FP32 file's SHA-256, opset and onnxruntime version.

    Args:
        name: a zoo name (without ``-int8``).
        cache: the zoo cache folder; default :func:`edgesched.zoo.cache_dir`.
        force: quantize again even when a matching cached file exists.

    Returns:
        The path of the INT8 ONNX file.

    Raises:
        UnknownNameError: ``name`` is not a zoo model.
        DependencyNotInstalled: torch, torchvision, onnx or onnxruntime is missing.
        ZooError: the quantized file does not run.
    """
    entry(name)
    root = cache if cache is not None else cache_dir()
    export_onnx(name, cache=root)
    base = load_metadata(name, root)
    qname = f"{name}{INT8_SUFFIX}"
    qpath, qmeta_path = root / f"{qname}.onnx", metadata_path(qname, root)
    ort_version = version("onnxruntime")
    old = read_metadata(qmeta_path)
    if (
        not force
        and old is not None
        and qpath.is_file()
        and old.parent_sha256 == base.sha256
        and old.opset == base.opset
        and old.onnxruntime == ort_version
        and old.size_bytes == qpath.stat().st_size
    ):
        return qpath

    qmeta_path.unlink(missing_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=root, prefix=f".{qname}.") as work,
        atomic_path(qpath) as tmp,
    ):
        with _quiet_root_logger():
            method, how = _quantize(root / base.file, tmp, base, Path(work))
        _check(tmp, base)
        digest, size = sha256_file(tmp), tmp.stat().st_size
    notes = [how]
    accuracy = None
    if base.source == "digits":
        from edgesched.zoo.digits import onnx_accuracy

        accuracy = onnx_accuracy(qpath)
        notes.append("accuracy: held-out 25 % of sklearn digits, measured in onnxruntime (CPU)")
    else:
        notes.append("random weights (nothing is downloaded): outputs and accuracy are meaningless")
    notes.append("layers, params and flops describe the FP32 model")
    meta = base.model_copy(
        update={
            "name": qname,
            "precision": "int8",
            "quantization": method,
            "onnxruntime": ort_version,
            "created": datetime.now(UTC).replace(microsecond=0),
            "file": qpath.name,
            "size_bytes": size,
            "sha256": digest,
            "parent_sha256": base.sha256,
            "accuracy": accuracy,
            "notes": notes,
        }
    )
    write_metadata(ZooMetadata.model_validate(meta.model_dump()), qmeta_path)
    return qpath


__all__ = ["quantize_int8"]

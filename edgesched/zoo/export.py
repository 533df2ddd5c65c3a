"""Export zoo models to ONNX with a dynamic batch axis, and describe them in a metadata file.

``export_onnx("resnet18")`` writes ``<cache>/resnet18.onnx`` and ``<cache>/resnet18.json``
(:class:`~edgesched.zoo.metadata.ZooMetadata`). The exporter is torch's TorchScript-based one
(``dynamo=False``): it works offline without ``onnxscript``. Every export is checked with
``onnx.checker`` and run in onnxruntime at batch 1 and 2 before it replaces the cached file;
files are written to a temporary name and renamed, so a crash never leaves half a model.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.zoo._deps import require, version
from edgesched.zoo.metadata import (
    LayerRecord,
    ZooError,
    ZooMetadata,
    cache_dir,
    load_metadata,
    metadata_path,
    read_metadata,
)
from edgesched.zoo.registry import ZooEntry, entry

#: Default ONNX opset: 17 is understood by every onnxruntime >= 1.14 and TensorRT >= 8.6.
DEFAULT_OPSET = 17
#: Batch size of the example input the exporter traces with (not 1, so no size-1 axis is baked
#: into reshapes); the batch axis is dynamic in the file.
TRACE_BATCH = 2


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that is renamed onto it when the block succeeds."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_metadata(meta: ZooMetadata, path: Path) -> None:
    """Write ``meta`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _recipe(e: ZooEntry) -> str | None:
    if e.source != "digits":
        return None
    from edgesched.zoo.digits import recipe

    return recipe(e.name).digest()


def _cached(
    e: ZooEntry, onnx_path: Path, meta_path: Path, opset: int, torch_version: str
) -> ZooMetadata | None:
    """The metadata of a reusable cached export, or ``None``.

    Reusable means: both files exist, the metadata names this model, opset, torch version and
    training recipe, and the file has the recorded size (hashing a 300 MB file on every call
    would cost more than the check is worth; :func:`verify` does the full check).
    """
    meta = read_metadata(meta_path)
    if meta is None or not onnx_path.is_file():
        return None
    same = (
        meta.name == e.name
        and meta.precision == "fp32"
        and meta.opset == opset
        and meta.torch == torch_version
        and meta.recipe == _recipe(e)
        and meta.size_bytes == onnx_path.stat().st_size
    )
    return meta if same else None


def _output_names(outputs: list[Any]) -> list[str]:
    return ["output"] if len(outputs) == 1 else [f"output{i}" for i in range(len(outputs))]


def _check(
    path: Path, e: ZooEntry, expected: list[np.ndarray], sample: np.ndarray, label: str
) -> None:
    """``onnx.checker``, then onnxruntime at batch 1 (against ``expected``) and batch 2 (shapes).

    Raises:
        ZooError: a check failed.
    """
    from edgesched.zoo._ort import run_onnx, session

    onnx = require("onnx")
    try:
        onnx.checker.check_model(str(path))
        sess = session(path)
        for batch in (1, 2):
            x = np.repeat(sample, batch, axis=0)
            got = run_onnx(sess, x)
            shapes = [tuple(g.shape) for g in got]
            want = [(batch, *r.shape[1:]) for r in expected]
            if shapes != want:
                raise ValueError(f"at batch {batch} the outputs have shapes {shapes}, not {want}")
            if batch == 1:
                for g, r in zip(got, expected, strict=True):
                    tol = 1e-3 * (1.0 + float(np.max(np.abs(r), initial=0.0)))
                    err = float(np.max(np.abs(g - r), initial=0.0))
                    if not err <= tol:
                        raise ValueError(f"outputs differ from torch's by {err:.3g} (> {tol:.3g})")
    except Exception as exc:  # any checker or runtime failure means the file is unusable
        raise ZooError(
            f"the {label} export of zoo model {e.name!r} failed its check: {exc}; "
            "report it with the package versions (edgesched zoo list --json)"
        ) from None


def _legacy_exporter(torch: Any) -> dict[str, bool]:
    """``dynamo=False`` where torch has both exporters (2.5 and later), else nothing."""
    params = inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in params else {}


def _versions() -> dict[str, str]:
    return {p: version(p) for p in ("torch", "torchvision", "onnx", "onnxruntime")}


def export_onnx(
    name: str,
    *,
    cache: Path | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
) -> Path:
    """Export zoo model ``name`` to ``<cache>/<name>.onnx`` and write ``<cache>/<name>.json``.

    The ONNX input is called ``input`` and has shape ``(batch, *input_shape)``; the batch axis of
    every input and output is dynamic. Torchvision models get random weights drawn with seed 0,
    so exporting twice with the same package versions gives the same weights. The metadata holds
    the per-layer FLOPs and output sizes of a batch-1 forward pass (:mod:`edgesched.zoo._flops`)
    and, for ``digits-*`` models, the held-out accuracy of the exported file measured in
    onnxruntime.

    Args:
        name: a zoo name (see ``edgesched zoo list``).
        cache: the zoo cache folder; default :func:`cache_dir`.
        opset: ONNX opset version; default 17 (:data:`DEFAULT_OPSET`).
        force: export even when a matching cached file exists.

    Returns:
        The path of the ONNX file.

    Raises:
        UnknownNameError: ``name`` is not a zoo model.
        DependencyNotInstalled: torch, torchvision, onnx or onnxruntime is missing.
        ZooError: the exported file failed its checks.
    """
    e = entry(name)
    root = cache if cache is not None else cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    onnx_path, meta_path = root / f"{name}.onnx", metadata_path(name, root)
    versions = _versions()
    if not force and _cached(e, onnx_path, meta_path, opset, versions["torch"]) is not None:
        return onnx_path

    torch = require("torch")
    require("onnx")
    require("onnxruntime")
    from edgesched.zoo._flops import count_layers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # reproducible random weights; the caller's RNG is left alone
        model = e.build(cache=root) if e.source == "digits" else e.build()
    gen = torch.Generator().manual_seed(0)
    example = torch.rand((TRACE_BATCH, *e.input_shape), generator=gen)
    records, out = count_layers(model, example[:1])
    outputs = [t.detach().numpy() for t in (out if isinstance(out, tuple | list) else (out,))]
    names = _output_names(outputs)

    meta_path.unlink(missing_ok=True)  # a crash below must not leave old metadata on a new file
    with atomic_path(onnx_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                **_legacy_exporter(torch),
                input_names=["input"],
                output_names=names,
                dynamic_axes={n: {0: "batch"} for n in ["input", *names]},
                opset_version=opset,
                do_constant_folding=True,
            )
        _check(tmp, e, outputs, example[:1].numpy(), "ONNX")
        digest, size = sha256_file(tmp), tmp.stat().st_size

    accuracy, notes = None, []
    if e.source == "digits":
        from edgesched.zoo.digits import onnx_accuracy

        accuracy = onnx_accuracy(onnx_path)
        notes.append("accuracy: held-out 25 % of sklearn digits, measured in onnxruntime (CPU)")
    else:
        notes.append("random weights (nothing is downloaded): outputs and accuracy are meaningless")
    meta = ZooMetadata(
        name=name,
        base_model=name,
        task=e.task,
        source=e.source,
        input_shape=e.input_shape,
        output_names=names,
        output_shapes=[tuple(o.shape[1:]) for o in outputs],
        params=sum(p.numel() for p in model.parameters()),
        flops=sum(r.flops for r in records),
        opset=opset,
        **versions,
        created=datetime.now(UTC).replace(microsecond=0),
        file=onnx_path.name,
        size_bytes=size,
        sha256=digest,
        recipe=_recipe(e),
        accuracy=accuracy,
        notes=notes,
        layers=[LayerRecord(**vars(r)) for r in records],
    )
    write_metadata(meta, meta_path)
    return onnx_path


def verify(name: str, cache: Path | None = None) -> ZooMetadata:
    """Check that an exported file still has the SHA-256 its metadata records.

    Raises:
        UnknownNameError: ``name`` is not a zoo model (``-int8`` names allowed).
        ZooError: the model is not exported, or its file was changed or damaged.
    """
    root = cache if cache is not None else cache_dir()
    meta = load_metadata(name, root)
    path = root / meta.file
    if not path.is_file() or sha256_file(path) != meta.sha256:
        base = meta.base_model
        flag = " --int8" if meta.precision == "int8" else ""
        raise ZooError(
            f"zoo model file {path} does not match its metadata (missing or changed); "
            f"re-export it with: edgesched zoo export {base}{flag} --force"
        )
    return meta


__all__ = ["DEFAULT_OPSET", "cache_dir", "export_onnx", "load_metadata", "verify"]

"""``edgesched zoo``: list the built-in models and export them to ONNX (FP32 and INT8)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgesched._console import JsonOpt, console, err_console
from edgesched.zoo.metadata import INT8_SUFFIX, ZooMetadata, cache_dir, read_metadata
from edgesched.zoo.registry import ZOO, ZooEntry, entry

zoo_app = typer.Typer(
    help="The built-in model zoo: list it, export models to ONNX (FP32 or INT8).",
    no_args_is_help=True,
)

CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Zoo cache folder (default: $EDGESCHED_CACHE/zoo, else "
        "$XDG_CACHE_HOME/edgesched/zoo, else ~/.cache/edgesched/zoo).",
    ),
]


def _si(value: float, unit: str = "") -> str:
    """``3.63e9`` → ``3.63 G``; ``size`` in bytes → ``46.7 MB`` (SI prefixes)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def _cached(name: str, root: Path) -> ZooMetadata | None:
    """The metadata of ``name`` when it and its ONNX file are in ``root``."""
    meta = read_metadata(root / f"{name}.json")
    return meta if meta is not None and (root / meta.file).is_file() else None


def _row(e: ZooEntry, root: Path) -> dict[str, Any]:
    meta, qmeta = _cached(e.name, root), _cached(f"{e.name}{INT8_SUFFIX}", root)
    return {
        "name": e.name,
        "task": e.task,
        "input_shape": list(e.input_shape),
        "source": e.source,
        "cached": meta is not None,
        "size_bytes": meta.size_bytes if meta else None,
        "params": meta.params if meta else None,
        "flops": meta.flops if meta else None,
        "accuracy": meta.accuracy if meta else None,
        "int8_cached": qmeta is not None,
        "int8_accuracy": qmeta.accuracy if qmeta else None,
    }


@zoo_app.command("list")
def zoo_list(cache: CacheOpt = None, as_json: JsonOpt = False) -> None:
    """List the zoo's models and which of them are exported to the cache."""
    root = cache if cache is not None else cache_dir()
    rows = [_row(e, root) for e in ZOO.values()]
    if as_json:
        print(json.dumps({"cache": str(root), "models": rows}))
        return
    table = Table(title=f"Model zoo (cache: {root})", title_justify="left")
    for col in ("name", "task", "input", "source", "cached", "size", "FLOPs/sample", "INT8"):
        table.add_column(col, justify="right" if col in {"size", "FLOPs/sample"} else "left")
    for r in rows:
        table.add_row(
            r["name"],
            r["task"],
            "×".join(map(str, r["input_shape"])),
            r["source"],
            "yes" if r["cached"] else "no",
            _si(r["size_bytes"], "B") if r["cached"] else "",
            _si(r["flops"]) if r["cached"] else "",
            "yes" if r["int8_cached"] else "no",
        )
    console.print(table)
    console.print("FLOPs: 2 per multiply-add, from the exported metadata.", style="dim")


def _summary(path: Path, meta: ZooMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "path": str(path),
        "precision": meta.precision,
        "quantization": meta.quantization,
        "size_bytes": meta.size_bytes,
        "sha256": meta.sha256,
        "params": meta.params,
        "flops": meta.flops,
        "accuracy": meta.accuracy,
    }


@zoo_app.command("export")
def zoo_export(
    name: Annotated[str, typer.Argument(help="A zoo model name (see `edgesched zoo list`).")],
    int8: Annotated[
        bool, typer.Option("--int8", help="Also make the INT8 variant (onnxruntime quantizer).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Export (and quantize) again even when cached.")
    ] = False,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a zoo model to ONNX with a dynamic batch axis, and optionally to INT8."""
    from edgesched.zoo.export import export_onnx
    from edgesched.zoo.metadata import load_metadata
    from edgesched.zoo.quantize import quantize_int8

    entry(name)  # an unknown name fails before any work
    root = cache if cache is not None else cache_dir()
    root.mkdir(parents=True, exist_ok=True)

    def status(text: str) -> contextlib.AbstractContextManager[Any]:
        if err_console.is_terminal:
            return err_console.status(text, spinner="dots")
        return contextlib.nullcontext()

    with status(f"Exporting {name} to ONNX..."):
        path = export_onnx(name, cache=root, force=force)
    result = _summary(path, load_metadata(name, root))
    result["int8"] = None
    if int8:
        with status(f"Quantizing {name} to INT8..."):
            qpath = quantize_int8(name, cache=root, force=force)
        result["int8"] = _summary(qpath, load_metadata(f"{name}{INT8_SUFFIX}", root))
    if as_json:
        print(json.dumps(result))
        return
    for r in (result, result["int8"]):
        if r is None:
            continue
        console.print(f"[bold]{r['name']}[/bold] → {r['path']}", highlight=False, soft_wrap=True)
        acc = "" if r["accuracy"] is None else f", held-out accuracy {r['accuracy']:.2%}"
        console.print(
            f"  {r['precision']}, {_si(r['size_bytes'], 'B')}, {r['params']:,} params, "
            f"{_si(r['flops'], 'FLOP')}/sample{acc}",
            highlight=False,
        )

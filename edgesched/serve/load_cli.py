"""``edgesched load``: drive a KServe v2 server (REST or gRPC) and print throughput and latency."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from edgesched._console import JsonOpt, console
from edgesched.errors import EdgeschedError


class Protocol(StrEnum):
    """The wire protocol of ``edgesched load``."""

    http = "http"
    grpc = "grpc"


#: ``--url`` when not given, per protocol (Triton's default ports).
DEFAULT_URLS = {Protocol.http: "http://127.0.0.1:8000", Protocol.grpc: "127.0.0.1:8001"}


def load(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name to drive.")],
    url: Annotated[
        str | None,
        typer.Option(
            help="http: server base URL without /v2 (default http://127.0.0.1:8000); "
            "grpc: HOST:PORT (default 127.0.0.1:8001)."
        ),
    ] = None,
    protocol: Annotated[
        Protocol, typer.Option(help="v2 REST (http) or v2 gRPC (grpc).")
    ] = Protocol.http,
    rate: Annotated[
        float | None,
        typer.Option(help="Open loop: Poisson arrivals at this mean rate, requests/s."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Closed loop: this many workers, each with one request in flight."),
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds to keep sending.")] = 10.0,
    batch: Annotated[int, typer.Option(help="Batch size for a -1 first input dimension.")] = 1,
    binary: Annotated[
        bool,
        typer.Option(
            "--binary/--json-tensors",
            help="http: tensors in the binary data extension (as Triton's clients send them), "
            "or as JSON numbers (gRPC is always raw).",
        ),
    ] = True,
    timeout: Annotated[
        float, typer.Option(help="Per-request timeout, and the wait for answers, seconds.")
    ] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of the inputs and arrival times.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Send inference requests to a v2 server (HTTP or gRPC; open or closed loop), show latency."""
    if (rate is None) == (concurrency is None):
        raise EdgeschedError(
            "give exactly one of --rate (open loop, requests/s) or --concurrency (closed loop)"
        )
    from edgesched.serve import eventloop
    from edgesched.serve.loadgen import run_load

    url = url or DEFAULT_URLS[protocol]
    if not as_json:
        what = f"{rate:g} req/s (open loop)" if rate is not None else f"{concurrency} workers"
        console.print(f"driving {model} at {url} ({protocol.value}) with {what} for {duration:g} s")
    result = eventloop.run(
        run_load(
            url,
            model,
            rate_rps=rate,
            concurrency=concurrency,
            duration_s=duration,
            batch=batch,
            binary=binary,
            timeout_s=timeout,
            seed=seed,
            protocol=protocol.value,
        )
    )
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    from rich.table import Table

    table = Table(title=f"{model}: {result.mode} loop, target {result.target:g}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("sent", f"{result.sent:,}")
    table.add_row("ok", f"{result.ok:,}")
    errors = ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "0"
    table.add_row("errors", errors)
    table.add_row("duration", f"{result.duration_s:.2f} s")
    table.add_row("throughput", f"{result.throughput_rps:.1f} req/s")
    for label in ("p50", "p90", "p95", "p99", "mean", "max"):
        value = getattr(result, f"latency_{label}_s")
        table.add_row(f"latency {label}", "-" if value is None else f"{value * 1e3:.2f} ms")
    console.print(table)

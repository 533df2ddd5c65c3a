"""``edgesched serve`` (the KServe v2 HTTP and gRPC frontend over a cluster, until Ctrl-C) and
``edgesched compare`` (served records against the simulator)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgesched._console import JsonOpt, console
from edgesched.errors import ConfigError

if TYPE_CHECKING:
    from edgesched.profile.power import PowerMeter


def parse_model_files(items: list[str] | None) -> dict[str, str]:
    """``["NAME=PATH", ...]`` → ``{NAME: PATH}``.

    Raises:
        ConfigError: an item without ``=``, or a NAME given twice.
    """
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model-file {item!r} must look like NAME=PATH (e.g. m=model.onnx)")
        if name in out:
            raise ConfigError(f"--model-file gives model {name!r} twice")
        out[name] = path
    return out


def serve(
    cluster: Annotated[
        Path, typer.Argument(help="cluster.yaml: the nodes, their models, its serving: section.")
    ],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Route policy (see: edgesched policies).")
    ] = "min-expected-completion",
    policy_file: Annotated[
        Path | None,
        typer.Option(help="Trained file of --policy learned (default: the shipped one)."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="Where workers run: 'local' (an OS process per node on this machine) or 'ray' "
            "(a Ray actor per node, on the board that joined with its edgesched-node resource)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (HOST:PORT) with --backend ray; default: local."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; non-loopback needs --auth-token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (0: pick a free one).")] = 8000,
    grpc_port: Annotated[
        int, typer.Option(help="gRPC port (0: pick a free one; -1: no gRPC).")
    ] = 8001,
    model_file: Annotated[
        list[str] | None,
        typer.Option(
            "--model-file",
            "-m",
            help="NAME=PATH: serve model NAME from an ONNX file (over serving.model_files); "
            "repeatable.",
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            help="Executor of nodes whose serving.nodes entry does not say: onnxruntime or torch."
        ),
    ] = "onnxruntime",
    threads: Annotated[
        int, typer.Option(min=1, help="Intra-op threads per instance (unless serving.nodes says).")
    ] = 1,
    max_in_flight: Annotated[
        int, typer.Option(min=1, help="Requests in progress at once; more get 503.")
    ] = 1024,
    max_payload_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body in MiB; larger get 413.")
    ] = 64.0,
    records: Annotated[
        Path | None,
        typer.Option(
            help="CSV of every answered request (compare it with the simulator: edgesched "
            "compare FILE --cluster CLUSTER)."
        ),
    ] = None,
    log_format: Annotated[str, typer.Option(help="Log lines on stderr: json or text.")] = "json",
    power: Annotated[
        bool,
        typer.Option(
            "--power/--no-power",
            help="Read this machine's power meter (NVML, INA3221 or RAPL), when one is present, "
            "into /metrics every second.",
        ),
    ] = True,
    auth_token: Annotated[
        str | None,
        typer.Option(
            envvar="EDGESCHED_AUTH_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on every request.",
        ),
    ] = None,
    event_loop: Annotated[
        str,
        typer.Option(
            help="The frontend's event loop: uvloop (compiled; the lowest overhead per "
            "request), asyncio, or auto (uvloop when installed, else asyncio).",
        ),
    ] = "auto",
) -> None:
    """Serve the cluster's models over KServe v2 (HTTP and gRPC) until Ctrl-C.

    Every node gets a worker; each request is routed by POLICY, batched and offloaded as the
    cluster's serving: section says, and counted on GET /metrics.
    """
    from edgesched.core.cluster import Cluster
    from edgesched.serve import eventloop
    from edgesched.serve.logs import configure
    from edgesched.serve.server import InferenceServer

    loop_kind = eventloop.resolve(event_loop)  # a bad name fails before any worker starts
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be 'local' or 'ray'; got {backend!r}")
    if log_format not in ("json", "text"):
        raise ConfigError(f"--log-format must be 'json' or 'text'; got {log_format!r}")
    if address is not None and backend != "ray":
        raise ConfigError("--address is the Ray cluster to join; give it with --backend ray")
    configure(log_format)  # type: ignore[arg-type]
    from edgesched.policies import make_route

    server = InferenceServer(
        Cluster.load(cluster),
        policy=make_route(policy, policy_file),
        model_files=parse_model_files(model_file),
        backend=executor,
        threads_per_node=threads,
        workers=backend,  # type: ignore[arg-type]
        ray_address=address,
        max_in_flight=max_in_flight,
        max_payload_bytes=int(max_payload_mb * 2**20),
        auth_token=auth_token,
        records=records,
        power_meter=_measured_meter() if power else None,
    )
    eventloop.run(_run(server, host, port, None if grpc_port < 0 else grpc_port), loop_kind)


def _measured_meter() -> PowerMeter | None:
    """This machine's power meter, or None where there is only an estimate."""
    from edgesched.profile.power import detect_meter

    meter = detect_meter()
    return meter if meter.source == "measured" else None


async def _run(server: object, host: str, port: int, grpc_port: int | None) -> None:
    from edgesched.serve import eventloop
    from edgesched.serve.server import InferenceServer

    assert isinstance(server, InferenceServer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    bound = await server.start(host, port, grpc_port)
    try:
        shown = f"[{host}]" if ":" in host else host
        grpc = "" if server.grpc_port is None else f", gRPC on {shown}:{server.grpc_port}"
        console.print(
            f"serving on http://{shown}:{bound}/v2{grpc} (policy {server.policy_name}, "
            f"{eventloop.name_of(loop)} event loop)",
            soft_wrap=True,
        )
        for node in server.cluster.nodes:
            models = ", ".join(f"{m}×{c}" for m, c in node.models.items())
            console.print(f"  node {node.id}: {models}")
        meter = server.core.power_meter
        console.print(
            f"  power: {meter.name} ({meter.detail}) on /metrics"
            if meter is not None
            else "  power: no meter on this machine (none on /metrics)"
        )
        console.print("Ctrl-C stops (in-flight requests finish first)")
        await stop.wait()
    finally:
        console.print("stopping: draining requests in flight")
        await server.stop()


def compare(
    records: Annotated[Path, typer.Argument(help="Records written by edgesched serve --records.")],
    cluster: Annotated[
        Path, typer.Option("--cluster", "-c", help="The cluster.yaml that was served.")
    ],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="The route policy that was served.")
    ] = "min-expected-completion",
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Simulate the recorded requests on the same cluster and policy; show real vs simulated."""
    from rich.table import Table

    from edgesched.core.cluster import Cluster
    from edgesched.serve.compare import compare_records

    result = compare_records(records, Cluster.load(cluster), policy, seed)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    table = Table(title=f"{result.real.requests} served requests vs the simulator ({policy})")
    for col in ("figure", "served", "simulated", "sim / served"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for label, real, sim, ratio in result.rows():
        table.add_row(label, f"{real:,.3f}", f"{sim:,.3f}", f"{ratio:.3f}")
    console.print(table)

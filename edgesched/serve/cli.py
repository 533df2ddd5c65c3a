"""``edgesched serve``: run the KServe v2 HTTP frontend over a cluster until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from edgesched._console import console
from edgesched.errors import ConfigError


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
    cluster: Annotated[Path, typer.Argument(help="cluster.yaml: the nodes and their models.")],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Route policy (see: edgesched policies).")
    ] = "min-expected-completion",
    host: Annotated[
        str, typer.Option(help="Address to bind; non-loopback needs --auth-token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: pick a free one).")] = 8000,
    model_file: Annotated[
        list[str] | None,
        typer.Option(
            "--model-file", "-m", help="NAME=PATH: serve model NAME from an ONNX file; repeatable."
        ),
    ] = None,
    auth_token: Annotated[
        str | None,
        typer.Option(
            envvar="EDGESCHED_AUTH_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on every request.",
        ),
    ] = None,
) -> None:
    """Serve the cluster's models over the KServe v2 REST protocol until Ctrl-C."""
    from edgesched.core.cluster import Cluster
    from edgesched.serve.server import InferenceServer

    server = InferenceServer(
        Cluster.load(cluster),
        policy=policy,
        model_files=parse_model_files(model_file),
        auth_token=auth_token,
    )
    asyncio.run(_run(server, host, port))


async def _run(server: object, host: str, port: int) -> None:
    from edgesched.serve.server import InferenceServer

    assert isinstance(server, InferenceServer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    bound = await server.start(host, port)
    try:
        shown = f"[{host}]" if ":" in host else host
        console.print(f"serving on http://{shown}:{bound}/v2 (policy {server.policy_name})")
        for node in server.cluster.nodes:
            models = ", ".join(f"{m}×{c}" for m, c in node.models.items())
            console.print(f"  node {node.id}: {models}")
        console.print("Ctrl-C stops (in-flight requests finish first)")
        await stop.wait()
    finally:
        console.print("stopping: draining requests in flight")
        await server.stop()

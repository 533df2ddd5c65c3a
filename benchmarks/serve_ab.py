"""Paired comparison of two versions of the server: serving overhead or throughput, interleaved.

On a shared or virtual machine the overhead that ``serve_overhead.py`` reports moves by ±0.2 ms
between identical runs, more than most changes to the server are worth. This script serves the
same model from two source trees at once, each a git revision checked out in a temporary
worktree or ``.`` for the working tree, and sends both the same open-loop Poisson load in
alternating short chunks (A then B, then B then A, ...), so that the machine's drift falls on
both sides alike.

Each side runs its own tree's ``benchmarks/serve_overhead.py --_serve`` (the placement of
``serve_overhead.py``: the worker pinned to the last CPU, the frontend and this client on the
others); this process's lean client sends binary tensors. Overhead per request is, as there,
the end-to-end latency minus the worker's execution time.

Prints one JSON object: per side its tree, revision, overhead p50 and p99 in ms over all chunks
and each chunk's p50; then ``b_minus_a_p50_ms`` (the median over rounds of B's chunk p50 minus
A's) and ``rounds_b_lower`` (in how many rounds B's p50 was the lower).

With ``--concurrency C`` each chunk is instead a closed loop of ``C`` requests in flight, as in
the saturation step of ``serve_overhead.py``, and the figures are throughputs: per side the mean
and each chunk's requests per second and the worker's mean execution time, then
``b_over_a_rps`` (the median over rounds of B's chunk throughput over A's) and
``rounds_b_higher``.

Usage: python benchmarks/serve_ab.py A B [--rounds 12] [--chunk 2] [--rate 110 | --concurrency C]
       [--model mobilenet_v3_small] [--event-loop-a KIND] [--event-loop-b KIND]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from serve_overhead import (
    Sender,
    _resolve,
    _worker_cpu,
    alternating,
    closed_loop_rps,
    frontend,
    model_parser,
    open_loop,
    pin_others,
)

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checked_out(rev: str) -> Iterator[tuple[Path, str]]:
    """(source tree, commit) of ``rev``: ``.`` is the working tree, else a temporary worktree."""

    def git(*args: str, cwd: Path = ROOT) -> str:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"git {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()

    if rev == ".":
        yield ROOT, git("rev-parse", "--short", "HEAD") + "+working-tree"
        return
    commit = git("rev-parse", "--short", "--verify", f"{rev}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="serve-ab-") as tmp:
        tree = Path(tmp) / "tree"
        git("worktree", "add", "--detach", str(tree), commit)
        try:
            yield tree, commit
        finally:
            git("worktree", "remove", "--force", str(tree))


def compare(args: Any) -> dict[str, Any]:
    """Serve from both trees, alternate the chunks, return the figures."""
    onnx, name = _resolve(args.model, args.served_as)
    cpu = _worker_cpu(None)
    if cpu is not None:
        pin_others(cpu)  # the client shares the frontends' CPUs
    sides = [("a", args.a, args.event_loop_a), ("b", args.b, args.event_loop_b)]
    with contextlib.ExitStack() as stack:
        senders, revisions = [], []
        for _, rev, loop in sides:
            tree, commit = stack.enter_context(checked_out(rev))
            env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree / 'benchmarks'}")
            script = tree / "benchmarks" / "serve_overhead.py"
            _, ready = stack.enter_context(frontend(script, onnx, name, cpu, loop, env))
            url = f"http://127.0.0.1:{ready['port']}"
            sender = Sender.infer(url, name, args.seed, True, "raw")
            stack.callback(sender.close)
            senders.append(sender)
            revisions.append(commit)
        if args.concurrency:
            return _throughputs(args, senders, revisions, sides)
        return _overheads(args, senders, revisions, sides)


def _side(rev: str, loop: str | None, revision: str) -> dict[str, Any]:
    """What identifies one side in the output."""
    return {"tree": rev, "revision": revision, "event_loop": loop or "the tree's default"}


def _overheads(args: Any, senders: list[Sender], revisions: list[str], sides: list) -> dict:
    """Open-loop chunks at ``args.rate``; the overhead figures of each side."""
    overhead: list[list[float]] = [[], []]
    chunk_p50: list[list[float]] = [[], []]
    for r in range(args.rounds):
        for i in alternating(r, 0, 1):
            e2e, _, exe = open_loop(senders[i], args.rate, args.chunk, args.seed + r)
            ms = (e2e - exe) * 1e3
            overhead[i] += ms.tolist()
            chunk_p50[i].append(float(np.median(ms)))
    diff = np.array(chunk_p50[1]) - np.array(chunk_p50[0])
    out: dict[str, Any] = {"model": args.model, "rate_rps": args.rate, "rounds": args.rounds}
    for i, (key, rev, loop) in enumerate(sides):
        p50, p99 = np.percentile(overhead[i], [50, 99])
        out[key] = _side(rev, loop, revisions[i]) | {
            "overhead_p50_ms": round(float(p50), 3),
            "overhead_p99_ms": round(float(p99), 3),
            "requests": len(overhead[i]),
            "chunk_p50_ms": [round(v, 3) for v in chunk_p50[i]],
        }
    out["b_minus_a_p50_ms"] = round(float(np.median(diff)), 3)
    out["rounds_b_lower"] = int((diff < 0).sum())
    return out


def _throughputs(args: Any, senders: list[Sender], revisions: list[str], sides: list) -> dict:
    """Closed-loop chunks at ``args.concurrency``; the throughput figures of each side."""
    rps: list[list[float]] = [[], []]
    exec_ms: list[list[float]] = [[], []]
    for r in range(args.rounds):
        for i in alternating(r, 0, 1):
            got, exe = closed_loop_rps(senders[i], args.concurrency, args.chunk)
            rps[i].append(got)
            exec_ms[i].append(exe * 1e3)
    ratio = np.array(rps[1]) / np.array(rps[0])
    out: dict[str, Any] = {
        "model": args.model,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
    }
    for i, (key, rev, loop) in enumerate(sides):
        out[key] = _side(rev, loop, revisions[i]) | {
            "rps": round(float(np.mean(rps[i])), 1),
            "exec_ms": round(float(np.mean(exec_ms[i])), 3),
            "chunk_rps": [round(v, 1) for v in rps[i]],
        }
    out["b_over_a_rps"] = round(float(np.median(ratio)), 4)
    out["rounds_b_higher"] = int((ratio > 1).sum())
    return out


def main() -> None:
    """Parse the arguments, run the comparison, print its JSON."""
    parser = model_parser(__doc__)
    parser.add_argument("a", help="side A: a git revision, or . for the working tree")
    parser.add_argument("b", help="side B: a git revision, or . for the working tree")
    parser.add_argument("--rounds", type=int, default=12, help="chunks per side")
    parser.add_argument("--chunk", type=float, default=2.0, help="seconds per chunk")
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--rate",
        type=float,
        default=110.0,
        help="open-loop arrivals per second (default: "
        "%(default)s, about a quarter of mobilenet_v3_small's saturation on one core)",
    )
    load.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="compare throughput instead: closed loops of this many requests in flight",
    )
    for side in ("a", "b"):
        parser.add_argument(
            f"--event-loop-{side}",
            default=None,
            help=f"event loop of side {side.upper()}'s frontend (auto, uvloop, asyncio; "
            "default: its tree's default, for trees without the option)",
        )
    parser.add_argument("--seed", type=int, default=0, help="input and arrival seed")
    print(json.dumps(compare(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()

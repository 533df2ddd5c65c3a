"""What an idle gap costs on this machine: the floor under the serving overhead at light load.

A request to the frontend crosses processes on two CPUs: the frontend wakes the node's worker,
and the worker's answer wakes the frontend. When requests are sparse, both CPUs sleep between
them, and on a virtual machine a sleeping CPU takes long to wake; Python code then also runs
slower for a while (cold caches). This script measures both against the gap since the last
request, so that ``serve_overhead.py``'s figure can be read against the machine's floor:

1. **Round trip**: two processes pinned to two CPUs (the frontend's and the worker's in
   ``serve_overhead.py``) exchange one byte over a Unix socket pair; the worker side spins
   ``--work-ms`` (like a model run) before answering. Reported: round trip minus that work.
2. **Cold code**: the time of one v2 request decode (``decode_request`` of a 602 KB binary
   tensor body), as the median over ``--repeats`` bursts of 10 calls, each burst after the gap.

Prints one JSON object: per gap (ms) the round-trip p50 in µs and the decode time in µs.

Usage: python benchmarks/wake_penalty.py [--gaps 0,1,8,15] [--repeats 300] [--work-ms 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import numpy as np


def _worker(sock: socket.socket, cpu: int, work_s: float) -> None:
    os.sched_setaffinity(0, {cpu})
    while data := sock.recv(64):
        end = time.perf_counter() + work_s
        while time.perf_counter() < end:
            pass
        sock.send(data)
    os._exit(0)


def round_trips_us(gap_s: float, repeats: int, work_s: float, cpus: tuple[int, int]) -> float:
    """p50 of (round trip − the worker's work) in µs, one exchange after every gap."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        _worker(theirs, cpus[1], work_s)
    theirs.close()
    took = []
    for _ in range(repeats):
        start = time.perf_counter()
        ours.send(b"x")
        ours.recv(64)
        took.append(time.perf_counter() - start - work_s)
        if gap_s:
            time.sleep(gap_s)
    ours.close()
    os.waitpid(pid, 0)
    return float(np.median(took[repeats // 10 :]) * 1e6)


def decode_us(gap_s: float, repeats: int) -> float:
    """Median µs of one decode of a 602 KB binary request, in bursts of 10 after each gap."""
    from edgesched.serve.protocol import HEADER_LENGTH, decode_request, encode_request

    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    body, headers = encode_request({"input0": x}, binary_inputs=True, binary_outputs=True)
    view, header_length = memoryview(bytearray(body)), int(headers[HEADER_LENGTH])
    took = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            decode_request(view, header_length)
        took.append((time.perf_counter() - start) / 10)
        if gap_s:
            time.sleep(gap_s)
    return float(np.median(took[repeats // 10 :]) * 1e6)


def main() -> None:
    """Parse the arguments, measure every gap, print the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--gaps", default="0,1,8,15", help="idle gaps in ms")
    parser.add_argument("--repeats", type=int, default=300, help="measurements per gap")
    parser.add_argument("--work-ms", type=float, default=2.0, help="the worker's spin per call")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    pair = (cpus[0], cpus[-1])
    os.sched_setaffinity(0, {pair[0]})
    points = []
    for gap_ms in (float(g) for g in args.gaps.split(",")):
        points.append(
            {
                "gap_ms": gap_ms,
                "round_trip_us": round(
                    round_trips_us(gap_ms / 1e3, args.repeats, args.work_ms / 1e3, pair), 1
                ),
                "decode_us": round(decode_us(gap_ms / 1e3, args.repeats), 1),
            }
        )
    print(json.dumps({"cpus": list(pair), "work_ms": args.work_ms, "points": points}))


if __name__ == "__main__":
    main()

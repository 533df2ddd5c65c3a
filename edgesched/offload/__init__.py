"""Confidence offload on real models: measure an edge/cloud pair, sweep the threshold θ.

:mod:`edgesched.offload.measure` runs the digits pair in onnxruntime (imported only there);
:mod:`edgesched.offload.sweep` turns a measured sample into accuracy, offload rate and latency
against θ; :mod:`edgesched.offload.plot` draws it. The decision itself is the ``offload`` policy
point (:mod:`edgesched.policies.offload`); the simulator runs it at scale (``simulate --offload``).
"""

from __future__ import annotations

from edgesched.offload.sweep import CloudLink, Point, Sweep, run_sweep

__all__ = ["CloudLink", "Point", "Sweep", "run_sweep"]

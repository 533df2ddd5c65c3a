"""Records of served requests: one CSV row per answered request, readable as a trace.

The columns start with those of a scenario trace (``time_s,model,slo_s,input_bytes``, see
:class:`~edgesched.core.scenario.TraceArrivals`), so the same file both says what happened and
replays the workload in the simulator: ``edgesched compare records.csv --cluster cluster.yaml``
runs it there and sets the measured and simulated figures side by side. The other columns are
the measured outcome: ``node,latency_s,exec_s,energy_j,offloaded``. Times are seconds since the
server started serving.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from edgesched.core.request import Outcome

COLUMNS = (
    "time_s",
    "model",
    "slo_s",
    "input_bytes",
    "node",
    "latency_s",
    "exec_s",
    "energy_j",
    "offloaded",
)


class RecordWriter:
    """Appends one row per answered request to a CSV file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        """Create (or truncate) ``path`` and write the header.

        Raises:
            OSError: the file cannot be written.
        """
        self.path = Path(path)
        self._file: TextIO | None = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self.rows = 0

    def write(
        self, outcome: Outcome, model: str, node: str, input_bytes: int, epoch_s: float
    ) -> None:
        """Write one request's row; ``epoch_s`` is the clock reading that becomes time 0."""
        if self._file is None:
            return
        self._csv.writerow(
            (
                f"{outcome.arrival_s - epoch_s:.6f}",
                model,
                f"{outcome.slo_s:g}",
                input_bytes,
                node,
                f"{outcome.latency_s:.6f}",
                f"{outcome.finish_s - outcome.start_s:.6f}",
                f"{outcome.energy_j:.6g}",
                int(outcome.offloaded),
            )
        )
        self.rows += 1

    def close(self) -> None:
        """Flush and close the file. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


__all__ = ["COLUMNS", "RecordWriter"]

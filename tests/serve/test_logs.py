"""Structured logs: one JSON object per line with the record's fields, or readable text."""

from __future__ import annotations

import json
import logging

import pytest

from edgesched.serve.logs import configure


@pytest.fixture(autouse=True)
def _restore() -> None:
    logger = logging.getLogger("edgesched")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_json_lines_carry_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    logging.getLogger("edgesched.serve").warning(
        "worker process died", extra={"event": "worker_died", "node": "pi-0", "lost": 3}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    obj = json.loads(line)
    assert obj["msg"] == "worker process died" and obj["level"] == "warning"
    assert (obj["event"], obj["node"], obj["lost"]) == ("worker_died", "pi-0", 3)
    assert obj["logger"] == "edgesched.serve" and obj["ts"] > 0


def test_text_lines_and_levels(capsys: pytest.CaptureFixture[str]) -> None:
    configure("text", level="warning")
    log = logging.getLogger("edgesched.serve")
    log.info("hidden")
    log.warning("shown", extra={"node": "a"})
    configure("text")  # configuring again replaces the handler instead of adding one
    log.warning("once")
    err = capsys.readouterr().err
    assert "hidden" not in err and "shown node=a" in err
    assert err.count("once") == 1

"""Structured logs of the server: one JSON object per line on stderr, or plain text.

Records of the ``edgesched.serve`` logger carry their fields in ``extra=`` (``event``, ``node``,
``model`` …); :class:`JsonFormatter` writes them with the time, level and message, so a log
shipper (Loki, Elasticsearch, ``jq``) can filter by event without parsing prose.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

#: Attributes every LogRecord has; anything else came in through ``extra=`` (or, starting with
#: an underscore, from a library's record factory, e.g. Ray's, and is left out).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> list[tuple[str, object]]:
    return [(k, v) for k, v in vars(record).items() if k not in _STANDARD and k[0] != "_"]


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ``ts``, ``level``, ``logger``, ``msg`` and extras."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, object] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj.update(_extras(record))
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


class TextFormatter(logging.Formatter):
    """``time level msg key=value …`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record))
        when = self.formatTime(record, "%H:%M:%S")
        return f"{when} {record.levelname.lower():7} {record.getMessage()} {extras}".rstrip()


def configure(fmt: Literal["json", "text"] = "json", level: str = "info") -> None:
    """Send the ``edgesched`` loggers to stderr in ``fmt`` at ``level`` (replacing earlier
    handlers set here)."""
    logger = logging.getLogger("edgesched")
    for h in [h for h in logger.handlers if getattr(h, "_edgesched", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._edgesched = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


__all__ = ["JsonFormatter", "TextFormatter", "configure"]

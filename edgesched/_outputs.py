"""Checks on the files and folders commands write, made before the work rather than after it."""

from __future__ import annotations

import os
from pathlib import Path

from edgesched.errors import EdgeschedError


def check_output_file(path: Path, what: str = "records") -> None:
    """Fail before a long run, not after it, when ``path`` (for the ``what``) cannot be written."""
    if path.is_dir():
        raise EdgeschedError(f"{path} is a folder; give a file name for the {what}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise EdgeschedError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise EdgeschedError(f"cannot write {path}: folder {parent} is not writable")


def prepare_output_dir(path: Path, what: str = "report") -> None:
    """Create the ``--out`` folder (for a ``what``) now, so a bad path fails before the runs."""
    if path.exists() and not path.is_dir():
        raise EdgeschedError(f"--out {path} is a file; give a folder for the {what}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeschedError(f"cannot create {what} folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise EdgeschedError(f"cannot write into {what} folder {path}")

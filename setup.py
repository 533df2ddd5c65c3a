"""Build hook: compile the simulator engine with Cython when a compiler is available.

``edgesched/sim/_engine.py`` is copied to ``_engine_c.py`` with its SHA-256 appended, then compiled
into the extension module ``edgesched.sim._engine_c``. Any failure (no Cython, no C compiler)
leaves the pure-Python engine in charge; ``edgesched.sim.engine`` chooses at import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
SOURCE = HERE / "edgesched" / "sim" / "_engine.py"
GENERATED = HERE / "edgesched" / "sim" / "_engine_c.py"


class OptionalBuildExt(build_ext):
    """Build extensions, but never fail the install because one could not be built."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure means: use pure Python
            print(f"edgesched: compiled engine not built ({exc}); the pure-Python engine runs")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # any build failure means: use pure Python
            print(f"edgesched: {ext.name} not built ({exc}); the pure-Python engine runs")


def extensions() -> list[Extension]:
    """The compiled engine, or nothing when Cython is missing."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    text = SOURCE.read_text(encoding="utf-8")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    GENERATED.write_text(
        "# Generated from _engine.py by setup.py for compilation; do not edit.\n"
        + text
        + f"\n_SOURCE_SHA256 = {digest!r}\n",
        encoding="utf-8",
    )
    ext = Extension("edgesched.sim._engine_c", [str(GENERATED.relative_to(HERE))])
    return cythonize([ext], compiler_directives={"language_level": 3}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

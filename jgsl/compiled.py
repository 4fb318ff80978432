"""Which of the compiled modules are stale, checked where a program starts.

Some core modules are compiled by setup.py (Cython pure-Python mode, see
L{jgsl.core.reply.rowloop}); a compiled module sits beside its source and is imported instead of
it, so one left over from before an edit runs old code. ``twistd jgsl`` and ``jgsl-load``
warn then (not the import of the cores: a library import should not look at files).
"""

from __future__ import annotations

from pathlib import Path

from twisted.logger import Logger

CORE = Path(__file__).resolve().parent / "core" / "reply"
log = Logger(namespace="jgsl")


def stale_compiled(folder: Path = CORE) -> list[str]:
    """Modules of ``folder`` whose compiled file is older than their source (the .py, or
    the .pxd beside it)."""
    stale = []
    for built in sorted([*folder.glob("*.so"), *folder.glob("*.pyd")]):
        source = folder / f"{built.name.split('.')[0]}.py"
        declarations = source.with_suffix(".pxd")  # (compile-time only, but compiled in)
        newest = max((p.stat().st_mtime for p in (source, declarations) if p.exists()),
                     default=None)
        if newest is not None and built.stat().st_mtime < newest:
            stale.append(source.stem)
    return stale


def warn_if_stale() -> None:
    if stale := stale_compiled():
        log.warn("compiled {modules} older than the source, so old code runs; rebuild with "
                 "./dev test or python setup.py build_ext --inplace", modules=", ".join(stale))

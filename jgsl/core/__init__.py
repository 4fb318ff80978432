"""Sans-IO cores: gateway, grid node, client, emulated users; they take ``now`` and messages
and return messages.

Some modules here are compiled by setup.py (Cython pure-Python mode, see
L{jgsl.core.rowloop}); a compiled module sits beside its source and is imported instead of
it, so one left over from before an edit runs old code. Importing the package warns then.
"""

from __future__ import annotations

import warnings
from pathlib import Path


def stale_compiled(folder: Path = Path(__file__).parent) -> list[str]:
    """Modules of ``folder`` whose compiled file is older than their source."""
    stale = []
    for built in sorted([*folder.glob("*.so"), *folder.glob("*.pyd")]):
        source = folder / f"{built.name.split('.')[0]}.py"
        if source.exists() and built.stat().st_mtime < source.stat().st_mtime:
            stale.append(source.stem)
    return stale


if _stale := stale_compiled():
    warnings.warn(f"jgsl.core: compiled {', '.join(_stale)} older than the source, so old "
                  "code runs; rebuild with ./dev test or python setup.py build_ext --inplace",
                  stacklevel=2)

"""The reply loop compiled and as plain Python: byte-for-byte the same replies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jgsl.core import rowloop, stale_compiled
from tests.rowloop_scenario import replies

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [str(seed) for seed in range(12)]


def run_scenario(mode: str) -> dict[str, list[str]]:
    result = subprocess.run([sys.executable, "-m", "tests.rowloop_scenario", mode, *SEEDS],
                            capture_output=True, text=True, cwd=ROOT, check=True, timeout=300)
    return json.loads(result.stdout)


def test_pure_python_module_gives_the_same_replies_as_this_process():
    """Radius on and off, lost replies, recover lists, splits over the size limit,
    observers, slots reused, mapped and unmapped strings: the .py source run as Python
    answers every update with the bytes this process (compiled, when it is) answers."""
    pure = run_scenario("--pure")
    here = {seed: replies(int(seed)) for seed in SEEDS}
    assert pure == here
    assert sum(len(r) for r in here.values()) > 6000


@pytest.mark.skipif(os.environ.get("JGSL_EXPECT_COMPILED") != "1",
                    reason="only where ./dev test made sure a C compiler is installed")
def test_reply_loop_is_compiled_from_this_source():
    assert rowloop.COMPILED
    assert stale_compiled() == []


def test_a_compiled_module_older_than_its_source_is_reported(tmp_path):
    for name in ("fresh.py", "old.cpython-311-x86_64-linux-gnu.so", "old.py",
                 "fresh.cpython-311-x86_64-linux-gnu.so", "orphan.so"):
        (tmp_path / name).write_text("")
    os.utime(tmp_path / "old.cpython-311-x86_64-linux-gnu.so", (1_000_000, 1_000_000))
    os.utime(tmp_path / "fresh.py", (1_000_000, 1_000_000))
    assert stale_compiled(tmp_path) == ["old"]

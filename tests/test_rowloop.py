"""The reply loop compiled and as plain Python: byte-for-byte the same replies."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jgsl.compiled import stale_compiled
from jgsl.core.reply import rowloop
from jgsl.wire import jgsl_pb2 as pb
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
    # a declarations file compiled into the module counts as its source too
    (tmp_path / "fresh.pxd").write_text("")
    os.utime(tmp_path / "fresh.cpython-311-x86_64-linux-gnu.so", (2_000_000, 2_000_000))
    assert stale_compiled(tmp_path) == ["fresh", "old"]


def _pure_rowloop():
    """The .py source as plain Python, beside the (compiled) module this process uses."""
    path = ROOT / "jgsl" / "core" / "reply" / "rowloop.py"
    loader = importlib.machinery.SourceFileLoader("rowloop_as_python", str(path))
    spec = importlib.util.spec_from_file_location("rowloop_as_python", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert not module.COMPILED
    return module


PURE = _pure_rowloop()
_FIELDS = pb.AgentTable.DESCRIPTOR.fields_by_name
_UINT = st.lists(st.integers(0, 2**32 - 1), max_size=6)
_SINT = st.lists(st.integers(-2**63, 2**63 - 1), max_size=6)


@given(st.fixed_dictionaries({"slots": _UINT, "masks": _UINT, "anim_ids": _UINT, "rx": _SINT,
                              "y": _SINT, "facing": _SINT, "scaling": _SINT}))
def test_packed_columns_are_what_protobuf_writes(columns):
    """Both the module in use and its plain-Python run give protobuf's own bytes."""
    expected = pb.AgentTable()
    for name, values in columns.items():
        getattr(expected, name).extend(values)
    spec = [(_FIELDS[name].number, _FIELDS[name].type == _FIELDS[name].TYPE_SINT64,
             array("q", [7, *values, 7]), 1, len(values)) for name, values in columns.items()]
    for module in (rowloop, PURE):
        table = pb.AgentTable()
        table.MergeFromString(module.pack_columns(spec))
        assert table.SerializeToString() == expected.SerializeToString()


@pytest.mark.parametrize("value", [-1, 2**32])
def test_packed_uint32_columns_refuse_what_does_not_fit(value):
    for module in (rowloop, PURE):
        with pytest.raises(ValueError):
            module.pack_columns([(1, False, array("q", [3, value]), 0, 2)])

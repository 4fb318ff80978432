"""One sandboxed Lua 5.4 VM: no os/io/debug/bytecode, a memory limit, an instruction limit.

Every script gets its own VM (lupa ``LuaRuntime``), so scripts share nothing and a reload can
build a fresh one beside the old. The VM runs with no memory limit while Python hands it
values (lupa aborts the process if Lua runs out of memory outside a protected call) and with
the limit on while Lua code runs: prelude.lua switches it around every resume and host call.
"""

from __future__ import annotations

import codecs
import hashlib
import math
import os
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lupa.lua54 import LuaError, LuaRuntime, lua_type

PRELUDE = (Path(__file__).with_name("prelude.lua")).read_text()
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
#: Largest module file read by require, and largest value handed between Lua and Python.
MAX_SOURCE = 1 << 20
MAX_ITEMS = 10_000
#: Lua strings are bytes: text both ways, and bytes that are not UTF-8 survive as surrogate
#: escapes (so a protobuf ``bytes`` field round-trips) instead of failing to decode.
ENCODING = "jgsl_lua"


def _codec(name: str) -> codecs.CodecInfo | None:
    if name != ENCODING:
        return None
    return codecs.CodecInfo(
        name=ENCODING,
        encode=lambda text, errors="strict": (text.encode("utf-8", "surrogateescape"),
                                              len(text)),
        decode=lambda data, errors="strict": (bytes(data).decode("utf-8", "surrogateescape"),
                                              len(data)))


codecs.register(_codec)


@dataclass
class Limits:
    #: Bytes a VM may hold; beyond it allocations fail with "not enough memory".
    memory: int = 32 << 20
    #: Lua instructions one hook call may run before it is stopped.
    instructions: int = 2_000_000


class Sources:
    """Module files as read at one moment: each file is read and hashed once, however many
    VMs load it (a reload of 100 scripts sharing a library reads that library once)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._real_root = os.path.realpath(self.root)
        self._read: dict[str, tuple[str, str, str] | str] = {}

    def module(self, name) -> tuple[str, str, str] | str:
        """(text, shown path, sha256) of module ``name``, or why it cannot be loaded."""
        if not isinstance(name, str) or not MODULE_NAME.fullmatch(name):
            return f"require: bad module name {name!r}"
        found = self._read.get(name)
        if found is None:
            found = self._read[name] = self._load(name)
        return found

    def _load(self, name: str) -> tuple[str, str, str] | str:
        relative = name.replace(".", "/") + ".lua"
        path = os.path.realpath(os.path.join(self._real_root, relative))
        if not path.startswith(self._real_root + os.sep) or not os.path.isfile(path):
            return f"require: no module {name!r} under {self.root.name}/"
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            return f"require: {name!r}: {e.strerror}"
        if len(data) > MAX_SOURCE:
            return f"require: {name!r} is larger than {MAX_SOURCE} bytes"
        shown = f"{self.root.name}/{os.path.relpath(path, self._real_root)}"
        return (data.decode("utf-8", "replace"), shown, hashlib.sha256(data).hexdigest())


class ScriptError(Exception):
    """A script failed to load or a hook raised; the message holds the Lua traceback."""


class ConversionError(ValueError):
    """A Lua value that cannot cross to Python (a function, a cycle, too big...)."""


def _deny(obj, name, is_setting):
    raise AttributeError("Python attributes are not reachable from game scripts")


_BYTECODE: list[bytes] = []


def _prelude_bytecode() -> bytes:
    """prelude.lua compiled once per process (by a throwaway runtime of the same Lua)."""
    if not _BYTECODE:
        runtime = LuaRuntime(encoding=None)
        dump = runtime.eval("function(src) return string.dump(assert(load(src, "
                            "'=jgsl/prelude.lua', 't'))) end")
        _BYTECODE.append(dump(PRELUDE.encode()))
    return _BYTECODE[0]


class LuaVM:
    """A Lua runtime with the JGSL prelude; ``api`` holds the host functions scripts call."""

    def __init__(self, root: Path, api: dict[str, Callable], limits: Limits,
                 sources: Sources | None = None) -> None:
        self.root = root
        self.limits = limits
        self.sources = sources or Sources(root)
        #: Modules loaded so far: name -> sha256, to tell whether a reload is needed.
        self.files: dict[str, str] = {}
        self.runtime = LuaRuntime(encoding=ENCODING, register_eval=False,
                                  register_builtins=False,
                                  unpack_returned_tuples=True, attribute_filter=_deny,
                                  max_memory=limits.memory)
        self.runtime.set_max_memory(0)
        # Lua holds these callbacks; they hold the VM only weakly, so a VM nobody uses any
        # more (the old one after a reload) is freed at once, not by a later GC pause.
        me = weakref.ref(self)
        runtime, memory = self.runtime, limits.memory
        host = self.table({
            "unlimit": lambda: runtime.set_max_memory(0),
            "relimit": lambda: runtime.set_max_memory(memory),
            "read_module": lambda name: me()._read_module(name),
            "api": self.table(api),
        })
        # The prelude is ours: loading it precompiled is safe, and halves a VM's start-up.
        prelude = self.runtime.globals().load(_prelude_bytecode(), "=jgsl/prelude.lua", "b")
        self._exports = prelude(host)

    def table(self, value: dict | list):
        """A Lua table from Python data (with the memory limit off, as always outside Lua).

        Strings go over as UTF-8 bytes: lupa pushes bytes as they are, while each str would
        cost a call of the Python-level codec (the bulk of handing agents to a script)."""
        return self.runtime.table_from(_bytes_for_lua(value), recursive=True)

    @property
    def globals(self):
        return self.runtime.globals()

    # -- running code ------------------------------------------------------------------

    def load_main(self, name: str) -> None:
        """Run the module ``name`` (its top level defines the hooks); raise ScriptError."""
        co, ok, state, *values = self._call(self._exports.main, name, self.limits.instructions)
        if not ok:
            raise ScriptError(state)
        if state != "done":
            raise ScriptError(f"{name}: the top level of a script may not wait")

    def start(self, fn, *args) -> tuple[object, str, list]:
        """Run ``fn(*args)`` in a new host thread: (thread, "done"|"parked", values)."""
        co, ok, state, *values = self._call(self._exports.start, fn, self.limits.instructions,
                                            *args)
        if not ok:
            raise ScriptError(state)
        return co, state, values

    def resume(self, co, *args) -> tuple[str, list]:
        ok, state, *values = self._call(self._exports.resume, co, self.limits.instructions,
                                        *args)
        if not ok:
            raise ScriptError(state)
        return state, values

    def _call(self, fn, *args) -> tuple:
        try:
            result = fn(*args)
        except LuaError as e:  # only a failure of the prelude itself (say, out of memory)
            raise ScriptError(str(e) or "not enough memory") from None
        finally:
            self.runtime.set_max_memory(0)
        return result if isinstance(result, tuple) else (result,)

    # -- require -----------------------------------------------------------------------

    def _read_module(self, name):
        """text, path of lua/<name with dots as slashes>.lua; or nil, why."""
        found = self.sources.module(name)
        if isinstance(found, str):
            return None, found
        text, shown, digest = found
        self.files[name] = digest
        return text, shown

    def changed(self, now: Sources) -> bool:
        """Whether a module this VM loaded differs in ``now`` (or went away)."""
        for name, digest in self.files.items():
            found = now.module(name)
            if isinstance(found, str) or found[2] != digest:
                return True
        return False


def _bytes_for_lua(value):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {_bytes_for_lua(k): _bytes_for_lua(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bytes_for_lua(v) for v in value]
    return value


def to_python(value, depth: int = 0, budget: list[int] | None = None):
    """A Lua value as plain Python data: tables become dicts, or lists if they are sequences.

    Functions, threads and userdata are refused, and so are tables nested deeper than 32 or
    holding more than MAX_ITEMS values in all.
    """
    budget = [MAX_ITEMS] if budget is None else budget
    kind = lua_type(value)
    if kind is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConversionError("a number that is not finite is not plain data")
        return value
    if kind != "table":
        raise ConversionError(f"a {kind} is not plain data")
    if depth > 32:
        raise ConversionError("tables nested too deep")
    items = []
    for key, item in value.items():
        budget[0] -= 1
        if budget[0] < 0:
            raise ConversionError(f"more than {MAX_ITEMS} values")
        items.append((to_python(key, depth + 1, budget), to_python(item, depth + 1, budget)))
    if items and all(type(k) is int for k, _ in items):
        items.sort(key=lambda item: item[0])
        if [k for k, _ in items] == list(range(1, len(items) + 1)):
            return [v for _, v in items]
    return dict(items)

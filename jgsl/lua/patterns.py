"""Lua string patterns, matched by Lua itself: the config's ``worldfilter`` and ``nidfilter``.

The original JGSL matched these with Lua's ``string.find``; a hand translation to regular
expressions differed (``%bxy``, ``%f[set]``, ``.`` and newlines, ``-``). Here one small Lua
state (no sandbox is needed: only ``string.find`` is ever called, with a pattern from the
operator's config file) does the matching, so a pattern means what it meant in 2009.
"""

from __future__ import annotations

from functools import cache

from lupa.lua54 import LuaError, LuaRuntime

#: Distinct texts remembered per pattern (world paths and user names repeat).
CACHE = 4096


@cache
def _find():
    """string.find in a Lua state made when the first pattern is (not at every import)."""
    lua = LuaRuntime(register_eval=False, unpack_returned_tuples=True)
    return lua.eval("function(s, p) return string.find(s, p) ~= nil end")


class PatternError(ValueError):
    """A malformed Lua pattern; the text is Lua's."""


def _first_line(error: LuaError) -> str:
    """Lua's message without the position and the traceback."""
    return str(error).splitlines()[0].split(": ", 1)[-1]


class LuaPattern:
    """A compiled-once, checked Lua pattern with the ``search`` a ``re.Pattern`` has."""

    __slots__ = ("pattern", "_seen", "_find")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._seen: dict[str, bool] = {}
        find = self._find = _find()
        # Lua finds a malformed part only when the matcher reaches it: lead it through the
        # pattern with texts made of the pattern's own characters.
        plain = pattern.replace("%", "").replace("^", "")
        for probe in ("", pattern, plain, plain + plain, "x" * 8):
            try:
                find(probe, pattern)
            except LuaError as e:
                raise PatternError(_first_line(e)) from None

    def search(self, text: str) -> bool:
        """Does the pattern match anywhere in ``text`` (Lua's ``string.find``)?"""
        found = self._seen.get(text)
        if found is None:
            try:
                found = bool(self._find(text, self.pattern))
            except LuaError:  # (a malformed part no probe reached: it matches nothing)
                found = False
            if len(self._seen) >= CACHE:
                self._seen.clear()
            self._seen[text] = found
        return found

    def __repr__(self) -> str:
        return f"LuaPattern({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LuaPattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

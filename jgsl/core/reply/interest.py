"""Which agents of a node are near a point: positions by slot in arrays.

Every update's reply asks "who is within r of this viewer"; answering it agent by agent in
Python cost a grid process a sixth of its time with ~60 agents in view (a cell index only
shrinks the candidates to ~4x the answer). Here the distances of all of a node's agents come
from one compiled pass (L{jgsl.core.reply.rowloop.near}) or, without a compiler, from a handful of
numpy operations, and Python only touches the agents in range.
"""

from __future__ import annotations

from array import array

import numpy as np

from jgsl.core.reply.rowloop import COMPILED, near

#: Where a slot without a place sits: farther than any radius from any position.
_NOWHERE = 1e30


class InterestIndex:
    """Positions (node-relative hundredths) of the agents that can be seen, by slot."""

    def __init__(self, capacity: int = 64) -> None:
        # array('d'), not numpy: the compiled pass reads their memory directly
        self._x = array("d", [_NOWHERE]) * capacity
        self._z = array("d", [_NOWHERE]) * capacity
        self._top = 0  # one past the highest slot ever placed
        #: What L{within} answers in, reused by every query (the reply loop reads them
        #: before the next): slots found, and 1 for those beyond the inner limit.
        self._found = array("q", bytes(8 * capacity))
        self._outer = array("B", bytes(capacity))

    def place(self, slot: int, position: tuple[int, int] | None) -> None:
        """Put ``slot`` at ``position``, or take it out of view with None."""
        if position is None:
            if slot < self._top:
                self._x[slot] = self._z[slot] = _NOWHERE
            return
        if slot >= len(self._x):
            grow = max(slot + 1, 2 * len(self._x)) - len(self._x)
            self._x.extend(array("d", [_NOWHERE]) * grow)
            self._z.extend(array("d", [_NOWHERE]) * grow)
            self._found.extend(array("q", bytes(8 * grow)))
            self._outer.extend(array("B", bytes(grow)))
        self._x[slot], self._z[slot] = position
        self._top = max(self._top, slot + 1)

    def within(self, x: int, z: int, far: float, inner: float) -> tuple[array, array, int]:
        """Slots whose squared distance from (x, z) is at most ``far``, ascending, and for
        each 1 if it is beyond ``inner``: the first n of the two arrays returned, with n.
        They are overwritten by the next query. One compiled pass when the reply loop is
        compiled (a few µs for a thousand agents), numpy's vector operations when not."""
        top = self._top
        if COMPILED:
            n = near(self._x, self._z, top, x, z, far, inner, self._found, self._outer)
            return self._found, self._outer, n
        dx = np.frombuffer(self._x)[:top] - x
        dx *= dx
        dz = np.frombuffer(self._z)[:top] - z
        dz *= dz
        dx += dz
        slots = np.flatnonzero(dx <= far)
        n = len(slots)
        self._found[:n] = array("q", slots.tolist())
        self._outer[:n] = array("B", (dx[slots] > inner).astype(np.uint8).tobytes())
        return self._found, self._outer, n

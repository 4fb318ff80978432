"""The per-agent loop of a grid node's reply: which agents a reader gets, and their rows.

Every update's reply walks the agents in the reader's view (~50-85 in a busy node) and, for
each, decides ping / cached row / new row and appends the row to the table's columns. In
Python that loop was two thirds of a grid process's CPU (~2.6 µs an agent). This module is
written in Cython's pure-Python mode: ``pip install`` compiles it when Cython and a C compiler
are there (setup.py), and the same source runs as plain Python when they are not, so there is
one implementation; L{COMPILED} says which one runs.

The loop reads what the node keeps per slot in plain lists (L{SlotTable}) and calls back into
the node only for the rows it has not cached yet.
"""

import cython

#: Bit 0 of a row's mask: its numbers are deltas against the acknowledged state.
DELTA = 1
#: Whether this module runs compiled (C) or as plain Python.
COMPILED: bool = cython.compiled


class SlotTable:
    """What the reply loop needs of each slot of a node, by slot: kept up to date by the node.

    ``changes[slot]`` and ``rows[slot]`` are the agent's own list of change frames (ascending)
    and its dict of cached rows, shared, not copied: in ``rows`` a change frame ("anchor")
    maps to the row of every reader whose baseline follows that change and precedes the
    next, as (mask, bound, numbers, prepared row, numbers only?).
    """

    __slots__ = ("born", "changes", "rows")

    def __init__(self) -> None:
        #: The first frame whose reply can show the slot's agent: a reader whose knowledge
        #: of the slot is older knew an earlier agent in it.
        self.born: list[int] = []
        self.changes: list[list[int]] = []
        self.rows: list[dict] = []

    def occupy(self, slot: int, born: int, changes: list[int], rows: dict) -> None:
        while len(self.born) <= slot:
            self.born.append(0)
            self.changes.append([])
            self.rows.append({})
        self.born[slot], self.changes[slot], self.rows[slot] = born, changes, rows

    def vacate(self, slot: int) -> None:
        self.changes[slot], self.rows[slot] = [], {}


@cython.boundscheck(False)
@cython.wraparound(False)
def reply_rows(candidates: list, outer: list, viewer: cython.Py_ssize_t,
               known: dict, wanted: object, table: SlotTable, frame: object,
               budget: cython.Py_ssize_t, size: cython.Py_ssize_t, fresh: dict, ping: list,
               writer: object, build: object) -> cython.bint:
    """Append the reader's rows to ``writer``, note what it will know in ``fresh`` and the
    agents with nothing new in ``ping``; True if some row did not fit in ``budget`` bytes.

    ``candidates`` are the slots near the reader, ascending; where ``outer`` is true the
    agent is only near enough if the reader already shows it (hysteresis). ``known``
    is slot -> frame of the reader's baseline (the reply that last showed it the slot),
    ``wanted`` the slots it asked to get in full, ``build(slot, since)`` the node's row for
    an agent (since None: in full).
    """
    born: list = table.born
    all_changes: list = table.changes
    all_rows: list = table.rows
    changes: list
    slot_column: list = writer.slot_column
    mask_column: list = writer.mask_column
    numbers: list = writer.number_columns
    absolute: list = writer.absolute
    previous: cython.Py_ssize_t = writer.previous_slot
    more: cython.bint = False
    j: cython.Py_ssize_t
    slot: cython.Py_ssize_t
    mask: cython.Py_ssize_t = 0
    cost: cython.Py_ssize_t = 0
    since: cython.longlong
    at: cython.Py_ssize_t
    shown: cython.bint
    for j in range(len(candidates)):
        # the slot as a C number for the lists, and as the very object the dicts hold
        # (one per slot, from the interest index), which a lookup finds without comparing
        key = candidates[j]
        slot = key
        if slot == viewer:
            continue
        k = known.get(key)
        shown = False
        if k is not None:
            since = k
            shown = since >= born[slot]
        if not shown and outer[j]:
            continue  # between r and 1.25 r: only an agent the reader already shows stays
        row = None
        if not shown or key in wanted:
            row = build(slot, None)
        else:
            changes = all_changes[slot]
            at = len(changes)
            if at == 0 or since >= changes[at - 1]:  # nothing new: a ping
                ping.append(key)
                fresh[key] = frame
                continue
            while at > 0 and changes[at - 1] > since:
                at -= 1  # now changes[at - 1] <= since < changes[at]: the reader's anchor
            cached = all_rows[slot].get(changes[at - 1]) if at > 0 else None
            if cached is None:
                row = build(slot, since)
            elif cached[4]:  # numbers only: no call at all
                mask, cost, values = cached[0], cached[1], cached[2]
                if size + cost > budget:
                    more = True
                    fresh[key] = k  # the reader still knows what it knew
                    continue
                size += cost
            else:
                row = cached[3]
        if row is not None:
            literals = row.literals
            cost = writer.bound(row) if literals else row.bound
            if size + cost > budget:
                more = True
                if shown:
                    fresh[key] = k
                continue
            size += cost
            if literals:
                writer.reserve(row)
            mask, values = row.mask, row.numbers
            if row.others:
                writer.write_others(row)
        slot_column.append(slot - previous)
        previous = slot
        _append(mask_column, numbers, absolute, mask, values)
        fresh[key] = frame
    writer.previous_slot = previous
    return more


def append_rows(writer: object, rows: list) -> None:
    """Append prepared rows, (slot, row) with slots ascending, to ``writer``'s columns."""
    slot_column: list = writer.slot_column
    previous = writer.previous_slot
    for slot, row in rows:
        slot_column.append(slot - previous)
        previous = slot
        _append(writer.mask_column, writer.number_columns, writer.absolute, row.mask, row.numbers)
        if row.others:
            writer.write_others(row)
    writer.previous_slot = previous


@cython.cfunc
@cython.inline
@cython.boundscheck(False)
@cython.wraparound(False)
def _append(mask_column: list, numbers: list, absolute: list, mask: cython.Py_ssize_t,
            values: tuple) -> cython.void:
    """A row's mask and numbers: deltas as they are, absolute values as the difference from
    the previous absolute value of the same column."""
    i: cython.Py_ssize_t
    mask_column.append(mask)
    if mask & DELTA:
        for i, value in values:
            numbers[i].append(value)
    else:
        for i, value in values:
            numbers[i].append(value - absolute[i])
            absolute[i] = value


@cython.boundscheck(False)
@cython.wraparound(False)
def gone_slots(known: dict, fresh: dict, table: SlotTable) -> list:
    """Slots the reader knew whose agent it is not shown any more (left, out of view, or
    replaced by another agent in the same slot), ascending."""
    born: list = table.born
    gone = []
    for slot, k in known.items():
        if slot not in fresh or k < born[slot]:
            gone.append(slot)
    gone.sort()
    return gone


@cython.boundscheck(False)
@cython.wraparound(False)
def steps(slots: list) -> list:
    """Ascending slots as differences (a packed column of small numbers)."""
    out = []
    previous: cython.Py_ssize_t = 0
    slot: cython.Py_ssize_t
    for slot in slots:
        out.append(slot - previous)
        previous = slot
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
def near(xs: cython.double[:], zs: cython.double[:], top: cython.Py_ssize_t, x: cython.double,
         z: cython.double, far: cython.double, inner: cython.double, keys: list) -> tuple:
    """Slots among the first ``top`` whose squared distance from (x, z) is at most ``far``,
    ascending, as the objects of ``keys``, and for each whether it is beyond ``inner``.
    Compiled, one pass over the positions is cheaper than numpy's few calls; see
    L{jgsl.core.interest}."""
    slots = []
    outer = []
    slot: cython.Py_ssize_t
    dx: cython.double
    dz: cython.double
    d: cython.double
    for slot in range(top):
        dx = xs[slot] - x
        dz = zs[slot] - z
        d = dx * dx + dz * dz
        if d <= far:
            slots.append(keys[slot])
            outer.append(d > inner)
    return slots, outer

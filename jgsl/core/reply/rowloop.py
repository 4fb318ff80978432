"""The per-agent loop of a grid node's reply: which agents a reader gets, and their rows.

Every update's reply walks the agents in the reader's view (~50-85 in a busy node) and, for
each, decides ping / cached row / new row and appends the row to the table's columns. In
Python that loop was two thirds of a grid process's CPU (~2.6 µs an agent). This module is
written in Cython's pure-Python mode: ``pip install`` compiles it when Cython and a C compiler
are there (setup.py), and the same source runs as plain Python when they are not, so there is
one implementation; L{COMPILED} says which one runs.

The loop reads what the node keeps per slot (L{SlotTable}: 64-bit numbers side by side for
the common case, the agents' own change lists and row caches for the rest) and calls back
into the node only for the rows it has not built yet. The interest query's pass over the
positions (L{near}) is here too, as it is only worth having compiled.
"""

from array import array

import cython

#: Bit 0 of a row's mask: its numbers are deltas against the acknowledged state.
DELTA = 1
#: Whether this module runs compiled (C) or as plain Python.
COMPILED: bool = cython.compiled

#: The hot table: per slot, WIDTH numbers in one run of memory (see L{SlotTable}); C
#: constants when compiled (a Python int in C arithmetic costs a conversion each time).
BORN = cython.declare(cython.Py_ssize_t, 0)
LAST = cython.declare(cython.Py_ssize_t, 1)
PREV = cython.declare(cython.Py_ssize_t, 2)
KEPT = cython.declare(cython.Py_ssize_t, 3)
MASK = cython.declare(cython.Py_ssize_t, 4)
COST = cython.declare(cython.Py_ssize_t, 5)
COUNT = cython.declare(cython.Py_ssize_t, 6)
PAIRS = cython.declare(cython.Py_ssize_t, 7)
#: Numeric fields a kept row may carry: (column index, value) pairs after PAIRS.
MOST_NUMBERS = cython.declare(cython.Py_ssize_t, 5)
WIDTH = cython.declare(cython.Py_ssize_t, 17)
_DELTA = cython.declare(cython.Py_ssize_t, 1)  # DELTA, as a C constant
_UINT32_MAX = cython.declare(cython.longlong, 0xFFFFFFFF)


#: The C pointers the compiled loops read arrays through, and one of each, NULL, to say
#: which L{_memory} returns.
pointer = cython.fused_type(cython.p_longlong, cython.p_double, cython.p_uchar)
_LONGS = cython.declare(cython.p_longlong, cython.NULL)
_DOUBLES = cython.declare(cython.p_double, cython.NULL)
_BYTES = cython.declare(cython.p_uchar, cython.NULL)


@cython.cfunc
@cython.inline
def _memory(kind: pointer, numbers: object) -> pointer:
    """The memory of an array (typecode 'q', 'd' or 'B', as ``kind`` says), for a loop that
    does not resize it: a C pointer when compiled (a typed memoryview costs thousands of
    instructions to set up, and a reply takes a dozen), the array itself as plain Python."""
    if cython.compiled:  # the array's data pointer, read from its C struct (rowloop.pxd
        # cimports it): ``buffer_info()`` was a method call and a tuple, ~20 per reply
        return cython.cast(cython.typeof(kind),
                           cython.cast(_carray.array,  # noqa: F821 - from rowloop.pxd
                                       numbers).data.as_voidptr)
    else:
        return numbers


@cython.cfunc
@cython.inline
def _bytearray_memory(buffer: bytearray) -> cython.p_uchar:
    """A bytearray's memory, as L{_memory} gives an array's."""
    if cython.compiled:
        return cython.cast(cython.p_uchar,
                           PyByteArray_AS_STRING(buffer))  # noqa: F821 - from rowloop.pxd
    else:
        return buffer


class SlotTable:
    """What the reply loop needs of each slot of a node, by slot: kept up to date by the node.

    ``hot`` holds, per slot, WIDTH 64-bit numbers side by side (one or two cache lines, where
    Python objects would be a dozen scattered ones): BORN, the first frame whose reply can
    show the slot's agent (a reader whose knowledge of the slot is older knew an earlier
    agent in it); LAST and PREV, the agent's newest two change frames (-1: none); and, when
    KEPT is 1, the row of every reader whose baseline lies between them, that is who keeps
    up, when it has numbers only: its MASK, COST (bytes at most) and COUNT numbers as
    (column, value) pairs.

    ``changes[slot]`` and ``rows[slot]`` are the agent's own list of change frames (ascending)
    and its dict of cached rows, shared, not copied: in ``rows`` a change frame ("anchor")
    maps to the row of every reader whose baseline follows that change and precedes the
    next, as (mask, bound, numbers, prepared row, numbers only?). The loop reads them for
    readers further behind and rows with strings.
    """

    __slots__ = ("hot", "changes", "rows")

    def __init__(self) -> None:
        self.hot = array("q")
        self.changes: list[list[int]] = []
        self.rows: list[dict] = []

    def occupy(self, slot: int, born: int, changes: list[int], rows: dict) -> None:
        while len(self.changes) <= slot:
            self.hot.extend(_VACANT)
            self.changes.append([])
            self.rows.append({})
        base = slot * WIDTH
        self.hot[base:base + WIDTH] = _VACANT
        self.hot[base + BORN] = born
        self.changes[slot], self.rows[slot] = changes, rows

    def vacate(self, slot: int) -> None:
        base = slot * WIDTH
        self.hot[base:base + WIDTH] = _VACANT
        self.changes[slot], self.rows[slot] = [], {}

    def changed(self, slot: int, changes: list[int]) -> None:
        """The agent has a new newest change frame: what was kept is stale."""
        hot, base = self.hot, slot * WIDTH
        hot[base + LAST] = changes[-1]
        hot[base + PREV] = changes[-2] if len(changes) > 1 else -1
        hot[base + KEPT] = 0

    def keep(self, slot: int, mask: int, cost: int, numbers: tuple) -> None:
        """Keep the row of readers between the two newest changes (numbers only)."""
        if len(numbers) > MOST_NUMBERS:
            return
        hot, base = self.hot, slot * WIDTH
        hot[base + MASK], hot[base + COST], hot[base + COUNT] = mask, cost, len(numbers)
        at = base + PAIRS
        for i, value in numbers:
            hot[at], hot[at + 1] = i, value
            at += 2
        hot[base + KEPT] = 1


_VACANT = array("q", [0, -1, -1] + [0] * (WIDTH - 3))


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _know(fresh: cython.p_longlong, nf: cython.Py_ssize_t, slot: cython.Py_ssize_t,
          frame: cython.longlong) -> cython.Py_ssize_t:
    """Note that the reader will know ``slot`` as of ``frame``; where the next pair goes."""
    fresh[nf] = slot
    fresh[nf + 1] = frame
    return nf + 2


@cython.boundscheck(False)
@cython.wraparound(False)
def reply_rows(found: object, flags: object, count: cython.Py_ssize_t,
               viewer: cython.Py_ssize_t, knowledge: object, wanted: object,
               table: SlotTable, frame: cython.longlong, budget: cython.Py_ssize_t,
               size: cython.Py_ssize_t, answer: object, ping: list, writer: object,
               build: object) -> tuple:
    """Append the reader's rows to ``writer``, note what it will know in ``fresh`` and the
    agents with nothing new in ``ping``; returns whether some row did not fit in ``budget``
    bytes, and how many numbers of ``fresh`` it wrote.

    The first ``count`` of ``found`` (array('q')) are the slots near the reader, ascending;
    where ``flags`` (array('B')) is non-zero the agent is only near enough if the reader
    already shows it (hysteresis). ``knowledge`` (array('q')) is what the reader knows,
    (slot, frame of its baseline) pairs ascending by slot, and ``answer`` gets the same for
    this reply (room for ``count`` pairs); ``wanted`` the slots it asked to get in full,
    ``build(slot, since)`` the node's row for an agent (since None: in full). Ascending
    pairs make "what does it know of this slot" one step of a merge, not a dict lookup.
    None of the arrays may change size meanwhile (the loop reads their memory).
    """
    hot: cython.p_longlong = _memory(_LONGS, table.hot)
    candidates: cython.p_longlong = _memory(_LONGS, found)
    outer: cython.p_uchar = _memory(_BYTES, flags)
    known: cython.p_longlong = _memory(_LONGS, knowledge)
    fresh: cython.p_longlong = _memory(_LONGS, answer)
    all_changes: list = table.changes
    all_rows: list = table.rows
    changes: list
    writer.make_room(count)  # (one row per candidate at most)
    cells: cython.p_longlong = _memory(_LONGS, writer.cells)
    lengths: cython.p_longlong = _memory(_LONGS, writer.lengths)
    absolute: cython.p_longlong = _memory(_LONGS, writer.absolute)
    capacity: cython.Py_ssize_t = writer.capacity
    previous: cython.Py_ssize_t = writer.previous_slot
    more: cython.bint = False
    has_wanted: cython.bint = len(wanted) > 0
    j: cython.Py_ssize_t
    slot: cython.Py_ssize_t
    mask: cython.Py_ssize_t = 0
    cost: cython.Py_ssize_t = 0
    since: cython.longlong = 0
    at: cython.Py_ssize_t
    base: cython.Py_ssize_t
    p: cython.Py_ssize_t
    end: cython.Py_ssize_t
    i: cython.Py_ssize_t
    n: cython.longlong
    shown: cython.bint
    kp: cython.Py_ssize_t = 0
    nk: cython.Py_ssize_t = len(knowledge)
    nf: cython.Py_ssize_t = 0
    for j in range(count):
        slot = candidates[j]
        if slot == viewer:
            continue
        base = slot * WIDTH
        while kp < nk and known[kp] < slot:
            kp += 2
        shown = False
        if kp < nk and known[kp] == slot:
            since = known[kp + 1]
            shown = since >= hot[base + BORN]
        if not shown and outer[j]:
            continue  # between r and 1.25 r: only an agent the reader already shows stays
        row = None
        if not shown or (has_wanted and slot in wanted):
            row = build(slot, None)
        else:
            if since >= hot[base + LAST]:  # nothing new: a ping
                ping.append(slot)
                nf = _know(fresh, nf, slot, frame)
                continue
            if hot[base + KEPT] and since >= hot[base + PREV]:
                # a reader that keeps up, a row of numbers: all from the hot table
                cost = hot[base + COST]
                if size + cost > budget:
                    more = True
                    nf = _know(fresh, nf, slot, since)  # the reader still knows what it knew
                    continue
                size += cost
                _cell(cells, capacity, lengths, 0, slot - previous)
                previous = slot
                mask = hot[base + MASK]
                _cell(cells, capacity, lengths, 1, mask)
                end = base + PAIRS + 2 * hot[base + COUNT]
                for p in range(base + PAIRS, end, 2):
                    i = hot[p]
                    n = hot[p + 1]
                    if mask & _DELTA:
                        _cell(cells, capacity, lengths, 2 + i, n)
                    else:
                        _cell(cells, capacity, lengths, 2 + i, n - absolute[i])
                        absolute[i] = n
                nf = _know(fresh, nf, slot, frame)
                continue
            changes = all_changes[slot]
            at = len(changes)
            while at > 0 and changes[at - 1] > since:
                at -= 1  # now changes[at - 1] <= since < changes[at]: the reader's anchor
            cached = all_rows[slot].get(changes[at - 1]) if at > 0 else None
            if cached is None:
                row = build(slot, since)
            elif cached[4]:  # numbers only: no call at all
                mask, cost, values = cached[0], cached[1], cached[2]
                if size + cost > budget:
                    more = True
                    nf = _know(fresh, nf, slot, since)  # the reader still knows what it knew
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
                    nf = _know(fresh, nf, slot, since)
                continue
            size += cost
            if literals:
                writer.reserve(row)
            mask, values = row.mask, row.numbers
            if row.others:
                writer.write_others(row)
        _cell(cells, capacity, lengths, 0, slot - previous)
        previous = slot
        _append(cells, capacity, lengths, absolute, mask, values)
        nf = _know(fresh, nf, slot, frame)
    writer.previous_slot = previous
    return more, nf


def append_rows(writer: object, rows: list) -> None:
    """Append prepared rows, (slot, row) with slots ascending, to ``writer``'s columns."""
    writer.make_room(len(rows))
    cells: cython.p_longlong = _memory(_LONGS, writer.cells)
    lengths: cython.p_longlong = _memory(_LONGS, writer.lengths)
    absolute: cython.p_longlong = _memory(_LONGS, writer.absolute)
    capacity: cython.Py_ssize_t = writer.capacity
    previous: cython.Py_ssize_t = writer.previous_slot
    slot: cython.Py_ssize_t
    for slot, row in rows:
        _cell(cells, capacity, lengths, 0, slot - previous)
        previous = slot
        _append(cells, capacity, lengths, absolute, row.mask, row.numbers)
        if row.others:
            writer.write_others(row)
    writer.previous_slot = previous


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.boundscheck(False)
@cython.wraparound(False)
def _cell(cells: cython.p_longlong, capacity: cython.Py_ssize_t, lengths: cython.p_longlong,
          column: cython.Py_ssize_t, value: cython.longlong) -> cython.void:
    """Append a number to a hot column of a writer (column c starts at c * capacity)."""
    cells[column * capacity + lengths[column]] = value
    lengths[column] += 1


@cython.cfunc
@cython.inline
@cython.boundscheck(False)
@cython.wraparound(False)
def _append(cells: cython.p_longlong, capacity: cython.Py_ssize_t, lengths: cython.p_longlong,
            absolute: cython.p_longlong, mask: cython.Py_ssize_t, values: tuple) -> cython.void:
    """A row's mask and numbers: deltas as they are, absolute values as the difference from
    the previous absolute value of the same column."""
    i: cython.Py_ssize_t
    n: cython.longlong
    _cell(cells, capacity, lengths, 1, mask)
    if mask & _DELTA:
        for i, n in values:
            _cell(cells, capacity, lengths, 2 + i, n)
    else:
        for i, n in values:
            _cell(cells, capacity, lengths, 2 + i, n - absolute[i])
            absolute[i] = n


@cython.boundscheck(False)
@cython.wraparound(False)
def gone_slots(knowledge: object, answer: object, table: SlotTable) -> list:
    """Slots the reader knew whose agent it is not shown any more (left, out of view, or
    replaced by another agent in the same slot), ascending: ``knowledge`` and ``answer``
    are (slot, frame) pairs ascending by slot, as L{reply_rows} reads and writes them."""
    hot: cython.p_longlong = _memory(_LONGS, table.hot)
    known: cython.p_longlong = _memory(_LONGS, knowledge)
    fresh: cython.p_longlong = _memory(_LONGS, answer)
    slot: cython.longlong
    k: cython.Py_ssize_t
    f: cython.Py_ssize_t = 0
    nf: cython.Py_ssize_t = len(answer)
    gone = []
    for k in range(0, len(knowledge), 2):
        slot = known[k]
        while f < nf and fresh[f] < slot:
            f += 2
        if f >= nf or fresh[f] != slot or known[k + 1] < hot[slot * WIDTH + BORN]:
            gone.append(slot)
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
def near(x_positions: object, z_positions: object, top: cython.Py_ssize_t, x: cython.double,
         z: cython.double, far: cython.double, inner: cython.double,
         slots: object, flags: object) -> cython.Py_ssize_t:
    """Slots among the first ``top`` whose squared distance from (x, z) is at most ``far``,
    ascending, written to ``slots`` (array('q'); 1 in ``flags``, array('B'), for those
    beyond ``inner``); how many. The positions are array('d'). Compiled, one pass over them
    is cheaper than numpy's few calls; see L{jgsl.core.reply.interest}."""
    xs: cython.p_double = _memory(_DOUBLES, x_positions)
    zs: cython.p_double = _memory(_DOUBLES, z_positions)
    found: cython.p_longlong = _memory(_LONGS, slots)
    outer: cython.p_uchar = _memory(_BYTES, flags)
    n: cython.Py_ssize_t = 0
    slot: cython.Py_ssize_t
    dx: cython.double
    dz: cython.double
    d: cython.double
    for slot in range(top):
        dx = xs[slot] - x
        dz = zs[slot] - z
        d = dx * dx + dz * dz
        if d <= far:
            found[n] = slot
            outer[n] = d > inner
            n += 1
    return n


@cython.boundscheck(False)
@cython.wraparound(False)
def pack_columns(columns: list) -> bytes:
    """Integer columns, (field number, zigzag?, array('q'), first index, count), as protobuf
    packed repeated fields.

    What ``extend`` on each column of a message costs most of (protobuf converts the
    values one by one through its generic sequence path) takes a pass in C here, and the
    bytes go out as they are (L{jgsl.core.reply.agenttable.TableWriter.encoded}). Only worth it
    compiled: plain Python builds the AgentTable and lets protobuf encode it instead.
    """
    total: cython.Py_ssize_t = 0
    for entry in columns:
        total += 16 + 10 * entry[4]
    buffer = bytearray(total)
    out: cython.p_uchar = _bytearray_memory(buffer)
    at: cython.Py_ssize_t = 0
    size: cython.Py_ssize_t
    i: cython.Py_ssize_t
    n: cython.longlong
    u: cython.ulonglong
    zigzag: cython.bint
    count: cython.Py_ssize_t
    first: cython.Py_ssize_t
    for entry in columns:
        count = entry[4]
        if not count:
            continue
        values: cython.p_longlong = _memory(_LONGS, entry[2])
        first = entry[3]
        zigzag = entry[1]
        size = 0
        for i in range(first, first + count):
            n = values[i]
            if zigzag:
                u = _zigzag(n)
            elif n < 0 or n > _UINT32_MAX:
                raise ValueError(f"{n} does not fit an uint32 column")
            else:
                u = n
            size += _varint_size(u)
        at = _put(out, at, (entry[0] << 3) | 2)  # tag: field number, length-delimited
        at = _put(out, at, size)
        for i in range(first, first + count):
            n = values[i]
            if zigzag:
                u = _zigzag(n)
            else:
                u = n
            while u >= 0x80:
                out[at] = (u & 0x7F) | 0x80
                u >>= 7
                at += 1
            out[at] = u
            at += 1
    del buffer[at:]  # (shrinks in place)
    return bytes(buffer)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _zigzag(n: cython.longlong) -> cython.ulonglong:
    """A sint64 as protobuf codes it: 0, -1, 1, -2... as 0, 1, 2, 3..."""
    return (cython.cast(cython.ulonglong, n) << 1) ^ cython.cast(cython.ulonglong, n >> 63)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _varint_size(u: cython.ulonglong) -> cython.Py_ssize_t:
    size: cython.Py_ssize_t = 1
    while u >= 0x80:
        u >>= 7
        size += 1
    return size


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.boundscheck(False)
@cython.wraparound(False)
def _put(out: cython.p_uchar, at: cython.Py_ssize_t, u: cython.ulonglong) -> cython.Py_ssize_t:
    while u >= 0x80:
        out[at] = (u & 0x7F) | 0x80
        u >>= 7
        at += 1
    out[at] = u
    return at + 1

"""Writing and reading the columnar agent table of SC_NormalUpdate (pb.AgentTable).

One row per agent: its slot, a mask of the fields present (bit n = opcode n; bit 0 = the
numbers are deltas against the acknowledged state) and one value per present field in that
field's column. Absolute numbers are coded as the difference from the previous absolute value
of the same column, names are front-coded, and strings travel as string-map ids or, when not
in the map, once per table and then as back references.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from jgsl.core.fields import MAPPED, MAPPED_SET, NUMERIC, NUMERIC_SET, OPCODES
from jgsl.core.reply.rowloop import COMPILED, DELTA, append_rows, pack_columns
from jgsl.core.stringmaps import StringMap
from jgsl.wire import jgsl_pb2 as pb

_ORDER = sorted(OPCODES, key=OPCODES.get)
#: The integer columns: field number and whether the values are zigzag coded (sint64).
_PACKED = {f.name: (f.number, f.type == f.TYPE_SINT64) for f in pb.AgentTable.DESCRIPTOR.fields
           if f.type in (f.TYPE_UINT32, f.TYPE_SINT64)}
_NUMBER_INDEX = {f: i for i, f in enumerate(NUMERIC)}
#: The columns every row writes, in L{TableWriter.cells}: slot steps, masks, the numbers.
_HOT = ("slots", "masks", *NUMERIC)
#: (column, field number, zigzag?) of each hot column, in field-number order.
_HOT_FIELDS = sorted(((c, *_PACKED[name]) for c, name in enumerate(_HOT)), key=lambda h: h[1])
#: Every column of the table in field-number order: (field number, name, index among the
#: hot columns or -1, zigzag coded?), for L{TableWriter.encoded}.
_ALL_FIELDS = [(f.number, f.name, _HOT.index(f.name) if f.name in _HOT else -1,
                f.type == f.TYPE_SINT64)
               for f in sorted(pb.AgentTable.DESCRIPTOR.fields, key=lambda f: f.number)]
#: The id and text columns of each mapped string field.
_STRING_COLUMNS = {f: (f"{f.removesuffix('_file')}_ids", f"{f.removesuffix('_file')}_text")
                   for f in MAPPED}
#: Bytes a table may cost beyond its rows (column tags and lengths).
TABLE_OVERHEAD = 3 * 17
#: What L{TableWriter.clear} resets the hot columns' lengths and the absolute values to.
_NO_LENGTHS = array("q", bytes(8 * len(_HOT)))
_NO_ABSOLUTES = array("q", bytes(8 * len(NUMERIC)))


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _zigzag_size(value: int) -> int:
    return _varint_size(value * 2 if value >= 0 else -value * 2 - 1)


def wrap_facing(delta: int) -> int:
    """A facing difference folded into [-128, 127] (facing is an angle byte)."""
    return (delta + 128) % 256 - 128


@dataclass(slots=True)
class Row:
    slot: int
    delta: bool
    values: dict[str, object]


@dataclass(slots=True)
class Prepared:
    """A row's content ready for any table: mask, (field, value) in opcode order, size bound.

    Not changed once made (rows are shared by every reader behind the same change), but not
    frozen: a frozen dataclass sets each field through object.__setattr__, and a busy node
    makes one of these for every row it has not built yet."""

    mask: int
    #: Integer fields as (index in NUMERIC, value), then the others (name, strings), each
    #: in opcode order.
    numbers: tuple[tuple[int, int], ...]
    others: tuple[tuple[str, object], ...]
    bound: int
    #: (field, text, bytes) of strings not in the string map (cheaper once in a table).
    literals: tuple[tuple[str, str, int], ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, object], delta: bool,
           maps: Mapping[str, StringMap]) -> Prepared:
        mask = DELTA if delta else 0
        bound = 4  # slot step and mask
        literals = []
        last, ordered = 0, True  # (a node's fields are nearly always in opcode order)
        for field, value in values.items():
            opcode = OPCODES[field]
            if opcode < last:
                ordered = False
            last = opcode
            mask |= 1 << opcode
            if field in NUMERIC_SET:
                bound += _zigzag_size(value) if delta else 5
            elif field in MAPPED_SET and maps[field].id_of(value):
                bound += 2
            else:
                cost = 4 + len(str(value).encode("utf-8"))
                bound += cost
                if field in MAPPED_SET:
                    literals.append((field, value, cost))
        items = list(values.items())
        if not ordered:
            items.sort(key=lambda item: OPCODES[item[0]])
        # (plain loops: a generator expression costs a compiled generator object each)
        numbers, others = [], []
        for item in items:
            if item[0] in NUMERIC_SET:
                numbers.append((_NUMBER_INDEX[item[0]], item[1]))
            else:
                others.append(item)
        return cls(mask, tuple(numbers), tuple(others), bound, tuple(literals))


class TableWriter:
    """Builds one table. The columns every row writes (slot step, mask, numbers: the "hot"
    columns) are 64-bit numbers in one array, written through C pointers by
    L{jgsl.core.reply.rowloop} and packed from there (a list costs a Python int per value, going
    in and again coming out); the rare name and string columns are lists."""

    def __init__(self, maps: Mapping[str, StringMap]) -> None:
        self._maps = maps
        #: The hot columns side by side, ``capacity`` numbers each (column c, as in _HOT,
        #: from c * capacity), and how many each holds.
        self.capacity = 0
        self.cells = array("q")
        self.lengths = array("q", bytes(8 * len(_HOT)))
        #: The previous absolute value of each numeric column.
        self.absolute = array("q", bytes(8 * len(NUMERIC)))
        self.clear()

    def clear(self) -> None:
        """Empty, for the next table: a grid node reuses one writer for every reply (making
        one cost more than a small reply's whole table)."""
        self.lengths[:] = _NO_LENGTHS  # (one copy each, not an item assignment per column)
        self.absolute[:] = _NO_ABSOLUTES
        #: The name and string columns, made when a row first needs them (most replies
        #: have numbers only).
        self._columns: dict[str, list] = {}
        self._name = ""
        #: The previous row's slot.
        self.previous_slot = 0
        #: Unmapped strings of the reserved rows: a later row's copy costs only a reference.
        self._literals: dict[str, set[str]] = {}  # field -> strings, made when first needed
        #: Unmapped strings written so far, with their back-reference numbers.
        self._texts: dict[str, dict[str, int]] = {}
        #: Bytes the table may take so far (what L{add} has added; see L{bound}).
        self.size = TABLE_OVERHEAD

    @property
    def rows(self) -> int:
        return self.lengths[0]

    def make_room(self, rows: int) -> None:
        """Room for ``rows`` more rows in every hot column, before a loop writes them
        (``cells`` does not change while it does)."""
        need = self.lengths[0] + rows
        if need <= self.capacity:
            return
        old, before = self.cells, self.capacity
        capacity = max(need, 2 * before, 64)
        cells = array("q", bytes(8 * len(_HOT) * capacity))
        for c in range(len(_HOT)):
            n = self.lengths[c]
            cells[c * capacity:c * capacity + n] = old[c * before:c * before + n]
        self.cells, self.capacity = cells, capacity

    def hot_column(self, name: str) -> array:
        """A copy of one hot column's numbers."""
        c = _HOT.index(name)
        start = c * self.capacity
        return self.cells[start:start + self.lengths[c]]

    def bound(self, row: Prepared) -> int:
        """Bytes the row may add here: its bound less strings this table already holds."""
        bound = row.bound
        for field, value, cost in row.literals:
            if value in self._literals.get(field, ()):
                bound -= cost - 2
        return bound

    def add(self, slot: int, values: Mapping[str, object], delta: bool) -> None:
        """Append a row; ``slot`` must be larger than the previous row's."""
        row = Prepared.of(values, delta, self._maps)
        self.size += self.bound(row)
        self.reserve(row)
        self.write([(slot, row)])

    def reserve(self, row: Prepared) -> None:
        """Note the unmapped strings of a row that L{write} will add: later rows' copies
        cost only a back reference (L{bound}). Rows without such strings need no call."""
        for field, value, _ in row.literals:
            self._literals.setdefault(field, set()).add(value)

    def write(self, rows: list[tuple[int, Prepared]]) -> None:
        """Append reserved rows, slots ascending (larger than any written before)."""
        append_rows(self, rows)

    def _column(self, name: str) -> list:
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = []
        return column

    def write_others(self, row: Prepared) -> None:
        """The row's name and strings (its numbers are written by the caller)."""
        column = self._column
        for field, value in row.others:
            if field == "name":
                shared = _shared_prefix(self._name, value)
                column("name_shared").append(shared)
                column("name_rest_len").append(len(value) - shared)
                column("name_rest").append(value[shared:])
                self._name = value
            elif field == "nickname":
                column("nickname").append(value)
            else:  # a mapped string
                ids, texts = _STRING_COLUMNS[field]
                string_id = self._maps[field].id_of(value)
                literals = self._texts.setdefault(field, {})
                if string_id:
                    column(ids).append(2 * string_id - 1)
                elif value in literals:
                    column(ids).append(2 * literals[value])
                else:
                    column(ids).append(0)
                    column(texts).append(value)
                    literals[value] = len(literals) + 1

    def finish(self, table: pb.AgentTable | None = None) -> pb.AgentTable:
        """Write the columns into ``table`` (a new one by default) and return it."""
        table = pb.AgentTable() if table is None else table
        for name in _HOT:
            values = self.hot_column(name)
            if values:
                getattr(table, name).extend(values)
        for name, values in self._columns.items():
            if not values:
                continue
            if name == "name_rest":
                table.name_rest = "".join(values)
            else:
                getattr(table, name).extend(values)
        return table

    def encoded(self) -> bytes:
        """The table as protobuf encodes it, for L{pb.NormalUpdateReplyOut}: compiled, the
        integer columns packed in C straight from the cells (and the rare strings here), in
        field-number order as protobuf writes them (the same bytes), without an AgentTable."""
        if not COMPILED:
            return self.finish().SerializeToString()
        cells, capacity, lengths = self.cells, self.capacity, self.lengths
        columns = self._columns
        if not columns:  # numbers only: most replies
            return pack_columns([(number, zigzag, cells, c * capacity, lengths[c])
                                 for c, number, zigzag in _HOT_FIELDS if lengths[c]])
        chunks: list[bytes] = []
        run: list[tuple] = []  # integer columns next to each other
        # every column in field-number order, as protobuf writes them
        for number, name, hot_at, zigzag in _ALL_FIELDS:
            if hot_at >= 0:
                count = lengths[hot_at]
                if count:
                    run.append((number, zigzag, cells, hot_at * capacity, count))
                continue
            values = columns.get(name)
            if not values:
                continue
            if name in _PACKED:
                run.append((number, zigzag, array("q", values), 0, len(values)))
                continue
            if run:
                chunks.append(pack_columns(run))
                run = []
            if name == "name_rest":
                text = "".join(values)
                if text:  # (an empty string field is not written)
                    chunks.append(_string_field(number, text))
            else:
                for value in values:
                    chunks.append(_string_field(number, value))
        if run:
            chunks.append(pack_columns(run))
        return b"".join(chunks)


class TableError(ValueError):
    """A table whose columns do not add up; the whole table must be dropped."""


def read_table(table: pb.AgentTable, maps: Mapping[str, StringMap]) -> Iterator[Row]:
    """Decode the rows of a table; raise L{TableError} if it is inconsistent."""
    if len(table.slots) != len(table.masks):
        raise TableError("slots and masks differ in length")
    columns = {f: iter(getattr(table, f)) for f in NUMERIC}
    shared, rest_len = iter(table.name_shared), iter(table.name_rest_len)
    rest, rest_at = table.name_rest, 0
    nicknames = iter(table.nickname)
    ids = {f: iter(getattr(table, f"{f.removesuffix('_file')}_ids")) for f in MAPPED}
    texts = {f: iter(getattr(table, f"{f.removesuffix('_file')}_text")) for f in MAPPED}
    seen: dict[str, list[str]] = {f: [] for f in MAPPED}
    absolute = dict.fromkeys(NUMERIC, 0)
    slot, name = 0, ""
    try:
        for step, mask in zip(table.slots, table.masks, strict=True):
            slot += step
            delta = bool(mask & DELTA)
            values: dict[str, object] = {}
            for field in _ORDER:
                if not mask & (1 << OPCODES[field]):
                    continue
                if field in NUMERIC:
                    value = next(columns[field])
                    if not delta:
                        value = absolute[field] = absolute[field] + value
                    values[field] = value
                elif field == "name":
                    keep, length = next(shared), next(rest_len)
                    if keep > len(name) or rest_at + length > len(rest):
                        raise TableError("name column out of range")
                    name = values[field] = name[:keep] + rest[rest_at:rest_at + length]
                    rest_at += length
                elif field == "nickname":
                    values[field] = next(nicknames)
                else:
                    values[field] = _string(field, next(ids[field]), texts[field], seen[field],
                                            maps[field])
            if mask >> (max(OPCODES.values()) + 1):
                raise TableError(f"unknown field bits in mask {mask:#x}")
            yield Row(slot, delta, values)
    except StopIteration:
        raise TableError("a column is shorter than its masks say") from None


def _string(field: str, code: int, texts: Iterator[str], seen: list[str],
            string_map: StringMap) -> str:
    if code == 0:
        text = next(texts)
        seen.append(text)
        return text
    if code % 2:
        text = string_map.text_of((code + 1) // 2)
    else:
        text = seen[code // 2 - 1] if code // 2 <= len(seen) else None
    if text is None:
        raise TableError(f"unknown {field} string code {code}")
    return text


def _string_field(number: int, text: str) -> bytes:
    """One string field (or repeated-string entry) as protobuf encodes it."""
    data = text.encode("utf-8")
    size = len(data)
    return b"".join((_TAGS[number], _ONE_BYTE[size] if size < 0x80 else _varint(size), data))


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: Varints of 0..127 (one byte each), and the tag of every length-delimited column.
_ONE_BYTE = [bytes((i,)) for i in range(0x80)]
_TAGS = {f.number: _varint((f.number << 3) | 2) for f in pb.AgentTable.DESCRIPTOR.fields}


def _shared_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b), 255)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i

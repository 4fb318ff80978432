"""Object creations and environment changes: a per-node log read through per-client cursors.

The original wiped its history at 30 items (clients silently missed edits) and echoed edits
back to their authors. Here every entry has a sequence number; a client's cursors ride in the
node's acknowledgement records, so a lost reply cannot lose an edit; authors are skipped; and
the environment log is compacted with the original CompressEnvs rule, keeping the surviving
entry's sequence number so a client behind the compaction still ends in the same state.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

from jgsl.core.safetext import message_text_problem
from jgsl.wire import jgsl_pb2 as pb

_seq = itemgetter(0)
#: Environment kinds where only the latest message matters (the original CompressEnvs).
STATE_KINDS = ("OCEAN_SET_WATER", "SKY_SET_Sky")
MAX_PARAMS = 32
MAX_TEXT = 256


def compress_envs(entries: list[tuple[int, pb.WorldEdit]]) -> list[tuple[int, pb.WorldEdit]]:
    """Keep the latest message of each state kind, its missing params filled from older ones."""
    latest: dict[str, int] = {}
    for index, (_, edit) in enumerate(entries):
        if edit.kind in STATE_KINDS:
            latest[edit.kind] = index
    out: list[tuple[int, pb.WorldEdit]] = []
    merged: dict[str, dict[str, str]] = {}
    for index, (seq, edit) in enumerate(entries):
        if edit.kind not in STATE_KINDS:
            out.append((seq, edit))
            continue
        params = merged.setdefault(edit.kind, {})
        params.update(edit.params)
        if index == latest[edit.kind]:
            kept = pb.WorldEdit()
            kept.CopyFrom(edit)
            kept.params.update(params)  # newer values already won in `params`
            out.append((seq, kept))
    return out


def edit_problem(edit: pb.WorldEdit) -> str | None:
    if not edit.kind or len(edit.kind) > 64:
        return "kind must have 1 to 64 characters"
    if len(edit.params) > MAX_PARAMS:
        return f"more than {MAX_PARAMS} params"
    if any(len(k) > MAX_TEXT or len(v) > MAX_TEXT for k, v in edit.params.items()):
        return f"a param longer than {MAX_TEXT} characters"
    return message_text_problem(edit)


@dataclass
class EditLog:
    """One kind of edit (creations or env) on one node."""

    compress: bool
    limit: int
    entries: list[tuple[int, pb.WorldEdit]]
    seq: int = 0
    #: Entries written (seq, edit) or removed by compaction (seq, None) since the last
    #: L{drain}: what to persist.
    changes: list[tuple[int, pb.WorldEdit | None]] = field(default_factory=list)

    @classmethod
    def new(cls, compress: bool, limit: int) -> EditLog:
        return cls(compress, limit, [])

    def restore(self, entries: list[tuple[int, pb.WorldEdit]]) -> None:
        """Start from stored entries (ascending seq), before any client reads the log."""
        self.entries = list(entries)
        self.seq = max((seq for seq, _ in entries), default=0)

    def append(self, edit: pb.WorldEdit, author: str) -> str | None:
        """Add an edit; a reason if it was refused (the log is full)."""
        if len(self.entries) >= self.limit and self.compress:
            before = dict(self.entries)
            self.entries = compress_envs(self.entries)
            after = dict(self.entries)
            self.changes += [(seq, None) for seq in before if seq not in after]
            self.changes += [(seq, e) for seq, e in after.items() if e is not before[seq]]
        if len(self.entries) >= self.limit:
            return f"the log is full ({self.limit} entries)"
        self.seq += 1
        stamped = pb.WorldEdit()
        stamped.CopyFrom(edit)
        stamped.author = author
        self.entries.append((self.seq, stamped))
        self.changes.append((self.seq, stamped))
        return None

    def drain(self) -> list[tuple[int, pb.WorldEdit | None]]:
        changes, self.changes = self.changes, []
        return changes

    def after(self, cursor: int, reader: str, most: int) -> tuple[list[pb.WorldEdit], int, bool]:
        """Up to ``most`` entries after ``cursor`` not written by ``reader``.

        Returns them, the new cursor (past skipped own entries too) and whether more remain.
        """
        if not self.entries or self.entries[-1][0] <= cursor:
            return [], cursor, False  # nothing new: what nearly every reply finds
        out: list[pb.WorldEdit] = []
        new_cursor = cursor
        # Entries are in seq order: start past the cursor (every reply asks, and a node may
        # hold thousands of creations that its clients have all read).
        start = bisect_right(self.entries, cursor, key=_seq)
        for seq, edit in islice(self.entries, start, None):
            if len(out) == most:
                return out, new_cursor, True
            new_cursor = seq
            if edit.author != reader:
                out.append(edit)
        return out, new_cursor, False

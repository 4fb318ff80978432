"""One grid node's reply engine: which agents a viewer gets, and the rows that say it.

The node tells it which agent holds which slot (L{ReplyBuilder.occupy}, L{vacate}), in which
frame an agent changed (L{changed}) and where others see it (L{place}); it answers a viewer
with the rows of what changed since what the viewer acknowledged (L{reply}). Inside, rows
are cached per change "anchor" and shared by every reader behind the same change, the slot
table gives the compiled loop (jgsl.core.reply.rowloop) flat per-slot lists, and the table
writer packs the columns: none of these shapes leave this package.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

from jgsl.core.agent import Agent, AgentMode
from jgsl.core.fields import NUMERIC_SET, POSITION_QUANTUM
from jgsl.core.jids import agent_name
from jgsl.core.reply.agenttable import TABLE_OVERHEAD, Prepared, TableWriter, wrap_facing
from jgsl.core.reply.interest import InterestIndex
from jgsl.core.reply.rowloop import SlotTable, gone_slots, reply_rows, steps
from jgsl.core.stringmaps import StringMap
from jgsl.core.tracker import EVICTED
from jgsl.wire import jgsl_pb2 as pb

_NO_SLOTS = array("q")
_NO_FLAGS = array("B")
_NONE_WANTED: frozenset[int] = frozenset()
#: Change frames kept per agent: a reader further behind gets absolute values.
_CHANGES_KEPT = 8
#: Bytes of a reply besides its table and slot lists.
_REPLY_OVERHEAD = 160


class ReplyBuilder:
    def __init__(self, maps: dict[str, StringMap], sense_radius: float | None,
                 max_reply_bytes: int, max_recover: int) -> None:
        self.maps = maps
        self.max_reply_bytes = max_reply_bytes
        self.max_recover = max_recover
        #: One table writer for every reply (cleared before each).
        self._writer = TableWriter(maps)
        #: Per slot, what the reply loop reads (when its agent came, its change frames, the
        #: common cached row).
        self._table = SlotTable()
        self._agents: dict[int, Agent] = {}
        #: Per slot: the frames at which its agent changed (the newest few, ascending), and
        #: whether older ones were dropped.
        self._changes: dict[int, list[int]] = {}
        self._trimmed: set[int] = set()
        #: Per slot, rows already built: a viewer's name -> its full row; a change frame ->
        #: the row for readers whose baseline follows it (as rowloop.SlotTable describes).
        self._rows: dict[int, dict] = {}
        self._interest = None if sense_radius is None else InterestIndex()
        if sense_radius is not None:
            self._near2 = (sense_radius / POSITION_QUANTUM) ** 2
            self._far2 = self._near2 * 1.25 ** 2  # an agent already shown stays until 1.25 r

    # -- what the node tells it ----------------------------------------------------------

    def occupy(self, agent: Agent, frame: int) -> None:
        """The agent takes its slot; replies up to ``frame`` were made before it came."""
        slot = agent.slot
        changes, rows = self._changes[slot], self._rows[slot] = [], {}
        self._agents[slot] = agent
        self._trimmed.discard(slot)
        self._table.occupy(slot, frame + 1, changes, rows)

    def vacate(self, agent: Agent) -> None:
        slot = agent.slot
        self.place(agent, None)
        self._rows.pop(slot).clear()
        del self._agents[slot], self._changes[slot]
        self._trimmed.discard(slot)
        self._table.vacate(slot)

    def changed(self, agent: Agent, frame: int) -> None:
        """The agent changed in this frame: its cached rows are stale."""
        slot = agent.slot
        self._rows[slot].clear()
        changes = self._changes[slot]
        if not changes or changes[-1] != frame:
            changes.append(frame)
            if len(changes) > _CHANGES_KEPT:
                del changes[0]
                self._trimmed.add(slot)
        self._table.changed(slot, changes)

    def place(self, agent: Agent, position: tuple[int, int] | None) -> None:
        """Where others see the agent (None: nowhere)."""
        if self._interest is not None:
            self._interest.place(agent.slot, position)

    # -- replies -------------------------------------------------------------------------

    def reply(self, reply: pb.NormalUpdateReplyOut, viewer: Agent, known: array,
              recover, frame: int, others: bool) -> array:
        """Fill ``reply``'s agents, ping and gone for ``viewer``, who knows ``known`` ((slot,
        frame) pairs); set ``more`` if what is left did not fit. What the viewer knows once
        it has this reply, in the same form."""
        candidates, outer, count = self._candidates(viewer) if others \
            else (_NO_SLOTS, _NO_FLAGS, 0)
        fresh = array("q", bytes(16 * count))  # room for a pair per candidate
        ping: list[int] = []
        wanted = set(recover[: self.max_recover]) if recover else _NONE_WANTED
        writer = self._writer
        writer.clear()
        # gone and visible agents take a slot step each outside the table
        budget = self.max_reply_bytes - _REPLY_OVERHEAD - len(known) - 2 * count
        agents = self._agents

        def build(slot: int, since: int | None) -> Prepared:
            agent = agents[slot]
            return self._full_row(agent, viewer) if since is None else self._row(agent, since)

        more, written = reply_rows(candidates, outer, count, viewer.slot, known, wanted,
                                   self._table, frame, budget, TABLE_OVERHEAD, fresh, ping,
                                   writer, build)
        if more:
            reply.more = True
        del fresh[written:]
        if writer.rows:
            reply.agents = writer.encoded()
        if known:
            gone = gone_slots(known, fresh, self._table)
            if gone:
                reply.gone.extend(steps(gone))
        if ping:
            reply.ping.extend(steps(ping))
        return fresh

    def _candidates(self, viewer: Agent) -> tuple[array, array, int]:
        """Slots that may be in the viewer's view, ascending, and for each whether it is
        between r and 1.25 r, where only an agent the viewer already shows stays: the
        first n of each, and n."""
        if self._interest is None:
            slots = sorted(slot for slot, a in self._agents.items()
                           if a.mode is AgentMode.AGENT)
            return array("q", slots), array("B", bytes(len(slots))), len(slots)
        if viewer.pos is None:
            return _NO_SLOTS, _NO_FLAGS, 0
        return self._interest.within(*viewer.pos, self._far2, self._near2)

    def _full_row(self, agent: Agent, viewer: Agent) -> Prepared:
        """Every field and the name, as the viewer's domain spells it."""
        name = agent_name(agent.jid, viewer.jid)
        rows = self._rows[agent.slot]
        row = rows.get(name)
        if row is None:
            values: dict[str, object] = {"name": name}
            for field_name, tracker in agent.trackers.items():
                values[field_name] = tracker.value
            row = rows[name] = Prepared.of(values, False, self.maps)
        return row

    def _row(self, agent: Agent, since: int) -> Prepared:
        """What changed after frame ``since`` (the agent has changed since then).

        The answer depends on ``since`` only through which change frames follow it, so it is
        built once per such "anchor" and shared by every reader behind the same change.
        """
        slot = agent.slot
        changes = self._changes[slot]
        at = bisect_right(changes, since)
        anchor = changes[at - 1] if at else (-1 if slot not in self._trimmed else None)
        rows = self._rows[slot]
        cached = rows.get(anchor) if anchor is not None else None
        if cached is not None:
            return cached[3]
        row = self._build_row(agent, since)
        plain = not row.others and not row.literals
        if anchor is not None:  # in the form the reply loop reads (rowloop)
            rows[anchor] = (row.mask, row.bound, row.numbers, row, plain)
        if plain and at == len(changes) - 1:  # the row of every reader that keeps up
            self._table.keep(slot, row.mask, row.bound, row.numbers)
        return row

    def _build_row(self, agent: Agent, since: int) -> Prepared:
        changed: dict[str, object] = {}
        absolute = False
        for name, tracker in agent.trackers.items():
            if tracker.frame > since:
                changed[name] = tracker.value
            elif tracker.refreshed > since:
                changed[name] = tracker.value
                absolute = True
        if absolute:
            return Prepared.of(changed, False, self.maps)
        deltas: dict[str, object] = {}
        for name, value in changed.items():
            if name in NUMERIC_SET:
                tracker = agent.trackers[name]
                earlier = tracker.earlier_frame  # (it changed after since: the value at since
                # is the one before the newest if that came no later than since)
                old = tracker.earlier if earlier is not None and earlier <= since \
                    else tracker.at(since)
                if old is None or old is EVICTED:
                    return Prepared.of(changed, False, self.maps)  # no baseline
                diff = value - old
                deltas[name] = wrap_facing(diff) if name == "facing" else diff
            else:
                deltas[name] = value
        return Prepared.of(deltas, True, self.maps)

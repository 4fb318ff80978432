"""A grid node: one region's agents, their changes by frame, and each client's reply.

A grid node simulates one region: it keeps every agent's fields stamped with the node's frame
id and answers each client with the fields changed since the frame the client echoes back
(``st``), so a lost reply only means the same changes are sent again. Sans-IO: methods take
``now`` and messages and return messages.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

from jgsl.core.agent import NO_ACK, Ack, Agent, AgentMode
from jgsl.core.edits import EditLog, edit_problem
from jgsl.core.effects import AgentRecord
from jgsl.core.fields import (
    MAX_COORDINATE,
    MAX_STRING,
    NUMERIC,
    POSITION_QUANTUM,
    decode_position,
    valid_coordinate,
)
from jgsl.core.jids import agent_name, bare
from jgsl.core.region import Region
from jgsl.core.reply.agenttable import TABLE_OVERHEAD, Prepared, TableWriter, wrap_facing
from jgsl.core.reply.interest import InterestIndex
from jgsl.core.reply.rowloop import SlotTable, gone_slots, reply_rows, steps
from jgsl.core.safetext import Logger, text_problem
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.core.tracker import EVICTED, ValueTracker
from jgsl.wire import jgsl_pb2 as pb

log = Logger(namespace="jgsl.grid")

#: Original history sizes (JGSL_opcode.lua historycount) and refresh rates (refreshrate).
HISTORY = {"asset_file": 5, "rx": 2, "y": 2, "rz": 2, "facing": 2, "ccs": 5, "anim": 5,
           "nickname": 2, "scaling": 2}
REFRESH = {"asset_file": 10, "rx": 5, "y": 5, "rz": 5, "facing": 5, "ccs": 10, "anim": 10,
           "nickname": 10, "scaling": 10}

@dataclass(frozen=True)
class GridSettings:
    #: Inactive agents are removed after this many seconds (original ClientTimeOut).
    agent_timeout: float = 20.0
    #: Seconds between slow-timer sweeps that remove inactive agents (original: 3).
    sweep_interval: float = 3.0
    #: Seconds between GRID_HELLO heartbeats to the gateways.
    hello_interval: float = 2.0
    #: Most slots served from one client's recover list.
    max_recover: int = 5
    #: Interest radius in world units: a client gets the agents this near it (None: all).
    sense_radius: float | None = None
    #: Largest SC_NormalUpdate payload; what does not fit goes in the next reply.
    max_reply_bytes: int = 16 * 1024
    #: Replies per client remembered as possible baselines (Quake 3 keeps 32).
    records: int = 16
    #: A field of refresh rate n is re-sent, absolute, to everyone every n refresh_seconds
    #: while its agent sends updates (0: never).
    refresh: dict[str, int] = field(default_factory=lambda: dict(REFRESH))
    #: Seconds per step of a refresh rate. In time, not in updates: an agent updating 20
    #: times a second would otherwise have its position re-sent four times a second.
    refresh_seconds: float = 1.0
    history: dict[str, int] = field(default_factory=lambda: dict(HISTORY))
    #: Creations and env messages per reply (original: 5 each), and log sizes.
    max_edits_per_reply: int = 5
    max_creations: int = 5000
    max_env: int = 200
    #: Seconds the gateways' clocks may differ from ours (tickets are judged so).
    max_clock_skew: float = 10.0

_NONE_WANTED: frozenset[int] = frozenset()
_NO_SLOTS = array("q")
_NO_FLAGS = array("B")


class GridNode:
    """One region's simulation: its agents (players, observers from neighbouring regions,
    NPCs), their fields stamped with the node's frames, the creation and environment logs,
    and each viewer's reply built against what its echoed frame acknowledged
    (docs/protocol.md, "Deltas and acknowledgements")."""

    def __init__(self, node_id: int, key: str, region: Region, role: str, max_users: int,
                 settings: GridSettings, maps: dict[str, StringMap] | None = None,
                 instance: int = 0) -> None:
        self.id = node_id
        self.instance = instance
        self.key = key
        self.region = region
        self.role = role
        self.max_users = max_users
        self.settings = settings
        self.maps = maps or default_maps()
        #: One table writer for every reply (cleared before each).
        self._writer = TableWriter(self.maps)
        #: The node's frame id ("timeid"): one per handled update, so every reply is unique.
        self.frame = 0
        self.agents: dict[str, Agent] = {}
        self._slots: dict[int, Agent] = {}
        self._free: list[int] = []
        #: Per slot, what the reply loop reads (when its agent came, its change frames, the
        #: common cached row).
        self._table = SlotTable()
        self._interest = None if settings.sense_radius is None else InterestIndex()
        if settings.sense_radius is not None:
            self._near2 = (settings.sense_radius / POSITION_QUANTUM) ** 2
            self._far2 = self._near2 * 1.25 ** 2  # an agent already shown stays until 1.25 r
        self._limit = None if region.size is None else round(region.size / POSITION_QUANTUM)
        #: Per numeric field, the values L{_check} accepts: in range, a number needs no call.
        most = MAX_COORDINATE / POSITION_QUANTUM
        self._ranges = dict.fromkeys(NUMERIC, (-most, most))
        self._ranges.update(facing=(0, 255), scaling=(1, 100_000))
        if self._limit is not None:
            self._ranges["rx"] = self._ranges["rz"] = (max(-self._limit, -most),
                                                      min(2 * self._limit, most))
        #: The fields of each refresh rate n (settings.refresh, read once).
        self._refresh: dict[int, list[str]] = {}
        for name, rate in settings.refresh.items():
            if rate:
                self._refresh.setdefault(rate, []).append(name)
        self.rejected: list[str] = []  # why fields were rejected, drained by the process
        self._roles: dict[str, str] = {}
        #: Users admitted with a ticket since the last GRID_HELLO (the gateway counts them).
        self.admitted: list[str] = []
        self.creations = EditLog.new(compress=False, limit=settings.max_creations)
        self.env = EditLog.new(compress=True, limit=settings.max_env)
        #: Agents that entered or left, ("enter" | "leave", JID), for the region script.
        self.events: list[tuple[str, str]] = []
        #: Whether this node's logs are written to the store (not if loading them failed:
        #: writing from seq 1 again would overwrite what is stored).
        self.persist_logs = True

    @property
    def name(self) -> str:
        """The node's name in the store: region and instance, stable across restarts."""
        return f"{self.region}#{self.instance}"

    def record(self, agent: Agent) -> AgentRecord | None:
        """What to save of an agent (in world coordinates); None for observers and agents
        whose position is not known."""
        rx, rz = agent.value("rx"), agent.value("rz")
        if agent.mode is not AgentMode.AGENT or agent.npc or rx is None or rz is None:
            return None
        x, z = self.region.to_world(rx, rz)
        facing = agent.value("facing")
        return AgentRecord(
            x=x, y=decode_position(agent.value("y") or 0),
            z=z, facing=127 if facing is None else facing,
            asset_file=agent.value("asset_file") or "", nickname=agent.value("nickname") or "",
            ccs=agent.value("ccs") or "", anim=agent.value("anim") or "",
            scaling=agent.value("scaling") or 0)

    def admit(self, jid: str, role: str) -> None:
        """Note the role the gateway's ticket grants ``jid`` before it joins."""
        self._roles[jid] = role or self.role
        self.admitted.append(jid)

    @property
    def active_agents(self) -> int:
        return sum(1 for a in self.agents.values() if a.mode is AgentMode.AGENT and not a.npc)

    # -- messages ----------------------------------------------------------------------

    def normal_update(self, now: float, sender: str,
                      msg: pb.NormalUpdate) -> pb.NormalUpdateReplyOut:
        agent = self._agent(now, sender, AgentMode.AGENT)
        self.frame += 1
        sent = msg.agent  # pb.AgentData: the sender's state and edits
        if sent.HasField("data"):
            self._store(now, agent, sent.data)
        if sent.creations or sent.env:
            self._edits(agent, sent)
        reply = self._reply(agent, msg.st, msg.recover, others=not msg.dummy, edits=True)
        if agent.intact():
            reply.ct = msg.ct
        else:
            reply.want_full = True  # ct stays absent: "send me everything again"
        return reply

    def observer_update(self, now: float, sender: str,
                        msg: pb.ObserverUpdate) -> pb.NormalUpdateReplyOut:
        agent = self._agent(now, sender, AgentMode.OBSERVER)
        self.frame += 1
        if msg.HasField("x") and msg.HasField("z") and valid_coordinate(msg.x) \
                and valid_coordinate(msg.z):
            agent.pos = self.region.to_local(msg.x, msg.z)
        return self._reply(agent, msg.st, msg.recover, others=True, edits=False)

    def logout(self, sender: str) -> Agent | None:
        """Forget the agent at once (the original kept it for 20 s, or for ever)."""
        agent = self.agents.get(sender)
        if agent is not None:
            self._remove(agent)
        return agent

    def expire(self, now: float) -> list[Agent]:
        gone = [a for a in self.agents.values()
                if now - a.last_active > self.settings.agent_timeout and not a.npc]
        for agent in gone:
            self._remove(agent)
        return gone

    # -- agents ------------------------------------------------------------------------

    def npc_update(self, now: float, jid: str, state: pb.AgentState) -> Agent:
        """Create or change a script's NPC agent (or set fields of any agent) in a frame of
        its own, so every viewer's next reply carries the change."""
        agent = self.agents.get(jid)
        if agent is None:
            agent = self._agent(now, jid, AgentMode.AGENT, npc=True)
        self.frame += 1
        self._store(now, agent, state)
        return agent

    def _agent(self, now: float, jid: str, mode: AgentMode, npc: bool = False) -> Agent:
        agent = self.agents.get(jid)
        if agent is None:
            slot = heapq.heappop(self._free) if self._free else len(self._slots)
            agent = Agent(jid, slot, mode, now,
                          role=self._roles.pop(jid, self.role), npc=npc)
            self.agents[jid] = self._slots[slot] = agent
            # replies up to this frame were made before the agent was there
            self._table.occupy(slot, self.frame + 1, agent.changes, agent.rows)
            if mode is AgentMode.AGENT and not npc:
                self.events.append(("enter", jid))
        elif agent.mode is not mode:
            self._place(agent, None)
            agent.mode, agent.pos = mode, None
            agent.trackers.clear()
            self._changed(agent)
            self.events.append(("enter" if mode is AgentMode.AGENT else "leave", jid))
        agent.last_active = now
        return agent

    def _remove(self, agent: Agent) -> None:
        if agent.mode is AgentMode.AGENT and not agent.npc:
            self.events.append(("leave", agent.jid))
        self._place(agent, None)
        agent.rows.clear()
        self._table.vacate(agent.slot)
        del self.agents[agent.jid], self._slots[agent.slot]
        heapq.heappush(self._free, agent.slot)

    def _store(self, now: float, agent: Agent, state: pb.AgentState) -> None:
        frame, changed = self.frame, False
        trackers, ranges = agent.trackers, self._ranges
        for descriptor, value in state.ListFields():
            name = descriptor.name
            bounds = ranges.get(name)  # (strings are always checked)
            if bounds is None or not bounds[0] <= value <= bounds[1]:
                problem = self._check(name, value)
                if problem:
                    self.rejected.append(f"{agent.jid}: {name} {problem}")
                    continue
            tracker = trackers.get(name)
            if tracker is None:
                tracker = trackers[name] = ValueTracker(self.settings.history.get(name, 2))
            changed |= tracker.push(frame, value)
        due, unit = agent.refresh_due, self.settings.refresh_seconds
        for rate, names in self._refresh.items():
            when = due.get(rate)
            if when is None:  # the first update: due in one to two periods, by slot, so
                # agents that came together are not all re-sent in the same frames
                due[rate] = now + rate * unit * (1 + agent.slot % rate / rate)
            elif now >= when:
                due[rate] = now + rate * unit
                for name in names:
                    tracker = trackers.get(name)
                    if tracker is not None:
                        tracker.refreshed, changed = frame, True
        if not changed:
            return
        self._changed(agent)
        rx, rz = trackers.get("rx"), trackers.get("rz")
        agent.pos = None if rx is None or rz is None else (rx.value, rz.value)
        if agent.mode is AgentMode.AGENT:
            self._place(agent, agent.pos)

    def _changed(self, agent: Agent) -> None:
        """Note that the agent changed in this frame: cached rows are stale."""
        agent.rows.clear()
        changes = agent.changes
        if not changes or changes[-1] != self.frame:
            changes.append(self.frame)
            if len(changes) > 8:
                del changes[0]
                agent.trimmed = True
        self._table.changed(agent.slot, changes)

    def _edits(self, agent: Agent, data: pb.AgentData) -> None:
        author = bare(agent.jid)
        # One author sequence spans both logs: apply in that order, or a later env edit
        # would make an earlier creation in the same message look like a resend.
        edits = sorted([(e.seq, 0, e) for e in data.creations] + [(e.seq, 1, e) for e in data.env],
                       key=lambda item: item[:2])
        for seq, is_env, edit in edits:
            if seq and seq <= agent.edit_seq:
                continue  # a resend of an edit already applied
            agent.edit_seq = max(agent.edit_seq, seq)
            log = self.env if is_env else self.creations
            problem = None if agent.role != "guest" else "a guest may not edit"
            problem = problem or edit_problem(edit) or log.append(edit, author)
            if problem:
                self.rejected.append(f"{agent.jid}: edit {edit.kind!r} {problem}")

    def _check(self, name: str, value: object) -> str | None:
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                return f"is longer than {MAX_STRING} characters"
            return text_problem(value)
        if name == "facing" and not 0 <= value <= 255:
            return f"{value} is not a byte"
        if name == "scaling" and not 1 <= value <= 100_000:
            return f"{value} is out of range"
        if name in ("rx", "rz") and self._limit is not None \
                and not -self._limit <= value <= 2 * self._limit:
            return f"{value} is far outside the node"
        if abs(value) > MAX_COORDINATE / POSITION_QUANTUM:
            return f"{value} is out of range"
        return None

    def _place(self, agent: Agent, position: tuple[int, int] | None) -> None:
        """Where others see the agent (None: nowhere)."""
        if self._interest is not None:
            self._interest.place(agent.slot, position)

    def _candidates(self, viewer: Agent) -> tuple[array, array, int]:
        """Slots that may be in the viewer's view, ascending, and for each whether it is
        between r and 1.25 r, where only an agent the viewer already shows stays: the
        first n of each, and n."""
        if self._interest is None:
            slots = sorted(a.slot for a in self._slots.values() if a.mode is AgentMode.AGENT)
            return array("q", slots), array("B", bytes(len(slots))), len(slots)
        if viewer.pos is None:
            return _NO_SLOTS, _NO_FLAGS, 0
        return self._interest.within(*viewer.pos, self._far2, self._near2)

    # -- replies -----------------------------------------------------------------------

    def _reply(self, viewer: Agent, st: int, recover, others: bool,
               edits: bool) -> pb.NormalUpdateReplyOut:
        frame = self.frame
        reply = pb.NormalUpdateReplyOut(sk=self.key, id=self.id, st=frame, base=st)
        ack = viewer.records.get(st) if st else NO_ACK
        if ack is None:  # older than what we remember: start this client afresh
            ack, reply.reset = NO_ACK, True
        known = ack.agents
        fresh_ack = Ack(None, ack.creations, ack.env)
        if edits:
            reader, most = bare(viewer.jid), self.settings.max_edits_per_reply
            items, fresh_ack.creations, more_c = self.creations.after(ack.creations, reader, most)
            if items:
                reply.creations.extend(items)
            items, fresh_ack.env, more_e = self.env.after(ack.env, reader, most)
            if items:
                reply.env.extend(items)
            if more_c or more_e:
                reply.more = True
        candidates, outer, count = self._candidates(viewer) if others \
            else (_NO_SLOTS, _NO_FLAGS, 0)
        fresh = array("q", bytes(16 * count))  # room for a pair per candidate
        ping: list[int] = []
        wanted = set(recover[: self.settings.max_recover]) if recover else _NONE_WANTED
        writer = self._writer
        writer.clear()
        # gone and visible agents take a slot step each outside the table
        budget = self.settings.max_reply_bytes - 160 - len(known) - 2 * count
        slots = self._slots

        def build(slot: int, since: int | None) -> Prepared:
            agent = slots[slot]
            return self._full_row(agent, viewer) if since is None else self._row(agent, since)

        more, written = reply_rows(candidates, outer, count, viewer.slot, known, wanted,
                                   self._table, frame, budget, TABLE_OVERHEAD, fresh, ping,
                                   writer, build)
        if more:
            reply.more = True
        del fresh[written:]
        fresh_ack.agents = fresh
        if writer.rows:
            reply.agents = writer.encoded()
        if known:
            gone = gone_slots(known, fresh, self._table)
            if gone:
                reply.gone.extend(steps(gone))
        if ping:
            reply.ping.extend(steps(ping))
        # records are kept in frame order (each reply's frame is new and the largest yet)
        records = viewer.records
        while records:
            oldest = next(iter(records))
            if oldest >= st:
                break
            del records[oldest]  # the client has moved past it
        records[frame] = fresh_ack
        while len(records) > self.settings.records:
            del records[next(iter(records))]
        return reply

    def _full_row(self, agent: Agent, viewer: Agent) -> Prepared:
        """Every field and the name, as the viewer's domain spells it."""
        name = agent_name(agent.jid, viewer.jid)
        row = agent.rows.get(name)
        if row is None:
            values: dict[str, object] = {"name": name}
            for field_name, tracker in agent.trackers.items():
                values[field_name] = tracker.value
            row = agent.rows[name] = Prepared.of(values, False, self.maps)
        return row

    def _row(self, agent: Agent, since: int) -> Prepared:
        """What changed after frame ``since`` (the agent has changed since then).

        The answer depends on ``since`` only through which change frames follow it, so it is
        built once per such "anchor" and shared by every reader behind the same change.
        """
        changes = agent.changes
        at = bisect_right(changes, since)
        anchor = changes[at - 1] if at else (-1 if not agent.trimmed else None)
        cached = agent.rows.get(anchor) if anchor is not None else None
        if cached is not None:
            return cached[3]
        row = self._build_row(agent, since)
        plain = not row.others and not row.literals
        if anchor is not None:  # in the form the reply loop reads (jgsl.core.reply.rowloop)
            agent.rows[anchor] = (row.mask, row.bound, row.numbers, row, plain)
        if plain and at == len(changes) - 1:  # the row of every reader that keeps up
            self._table.keep(agent.slot, row.mask, row.bound, row.numbers)
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
            if name in NUMERIC:
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



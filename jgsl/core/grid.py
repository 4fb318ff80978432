"""Grid processes and the grid nodes they host.

A grid node simulates one region: it keeps every agent's fields stamped with the node's frame
id and answers each client with the fields changed since the frame the client echoes back
(``st``), so a lost reply only means the same changes are sent again. Sans-IO: methods take
``now`` and envelopes and return envelopes.
"""

from __future__ import annotations

import enum
import heapq
import math
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jgsl.core.agenttable import TABLE_OVERHEAD, Prepared, TableWriter, wrap_facing
from jgsl.core.droplog import DropLog
from jgsl.core.edits import EditLog, edit_problem
from jgsl.core.fields import (
    MAX_COORDINATE,
    MAX_STRING,
    NUMERIC,
    POSITION_QUANTUM,
    REQUIRED,
    decode_position,
    encode_position,
    valid_coordinate,
)
from jgsl.core.interest import InterestIndex
from jgsl.core.jids import agent_name, bare
from jgsl.core.keys import new_key
from jgsl.core.region import Region
from jgsl.core.rowloop import SlotTable, gone_slots, reply_rows, steps
from jgsl.core.safetext import Logger, message_text_problem, text_problem
from jgsl.core.scripting import RegionLogic, ScriptLibrary, reload_scripts
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.core.tickets import DEV_TICKET_SECRET, issued_ahead, ticket_problem
from jgsl.core.tracker import EVICTED, ValueTracker
from jgsl.lua.convert import message_to_data
from jgsl.lua.sandbox import ScriptError
from jgsl.storage.records import (
    LOG_KINDS,
    AgentRecord,
    LoadKey,
    LoadNode,
    NodeLogs,
    SaveAgent,
    SaveEdit,
)
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope
from jgsl.wire.game import DecodeError, UnknownPayloadError, decode_payload

if TYPE_CHECKING:
    from jgsl.config import RuleSet

log = Logger(namespace="jgsl.grid")


class AgentMode(enum.Enum):
    AGENT = 1  # sends normal updates; broadcast to others
    OBSERVER = 2  # watches from a neighbouring region; never broadcast


#: Original history sizes (JGSL_opcode.lua historycount) and refresh rates (refreshrate).
HISTORY = {"asset_file": 5, "rx": 2, "y": 2, "rz": 2, "facing": 2, "ccs": 5, "anim": 5,
           "nickname": 2, "scaling": 2}
REFRESH = {"asset_file": 10, "rx": 5, "y": 5, "rz": 5, "facing": 5, "ccs": 10, "anim": 10,
           "nickname": 10, "scaling": 10}


@dataclass
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


_REQUIRED = frozenset(REQUIRED)
#: Messages for one of the process's nodes (sk, id).
_NODE_MESSAGES = frozenset({pb.NormalUpdate, pb.ObserverUpdate, pb.Logout})
_NONE_WANTED: frozenset[int] = frozenset()



@dataclass(slots=True)
class Ack:
    """What a client knows once it has a given reply: agents, and how far it read the logs.

    ``agents`` holds (slot, frame) pairs, ascending by slot, flat: for each slot the client
    shows, the frame its agent's state is exact at (a frame before the agent joined means
    the client knew an earlier agent in that slot)."""

    agents: array = field(default_factory=lambda: array("q"))
    creations: int = 0
    env: int = 0


_NO_SLOTS = array("q")
_NO_FLAGS = array("B")
#: What a client knows before its first reply (never changed: replies make new ones).
_NO_ACK = Ack()


@dataclass(eq=False)
class Agent:
    jid: str
    slot: int
    mode: AgentMode
    last_active: float
    trackers: dict[str, ValueTracker] = field(default_factory=dict)
    #: As a viewer: reply frame -> what the client knows once it has that reply.
    records: dict[int, Ack] = field(default_factory=dict)
    #: The author sequence number of the last edit applied from this agent.
    edit_seq: int = 0
    #: The role the gateway granted (from the ticket); decides edit rights.
    role: str = "guest"
    #: Node-relative position in hundredths (an observer's is the one it reported).
    pos: tuple[int, int] | None = None
    #: Frames at which some field changed or was refreshed (the newest few), ascending.
    changes: list[int] = field(default_factory=list)
    #: True once ``changes`` has dropped old frames.
    trimmed: bool = False
    #: Rows already built: a viewer's name -> its full row; a change frame -> the row for
    #: readers whose baseline follows it, as jgsl.core.rowloop.SlotTable describes.
    rows: dict[object, object] = field(default_factory=dict)
    #: When each refresh rate's fields are next re-sent (rate -> time; set at the first
    #: update).
    refresh_due: dict[int, float] = field(default_factory=dict)
    #: A non-player agent a region script spawned (never times out, never a viewer).
    npc: bool = False

    @property
    def is_agent(self) -> bool:
        return self.mode is AgentMode.AGENT

    def value(self, name: str) -> object:
        tracker = self.trackers.get(name)
        return None if tracker is None else tracker.value

    def intact(self) -> bool:
        return self.trackers.keys() >= _REQUIRED


class GridNode:
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
        ox, oz = self.region.origin
        facing = agent.value("facing")
        return AgentRecord(
            x=ox + decode_position(rx), y=decode_position(agent.value("y") or 0),
            z=oz + decode_position(rz), facing=127 if facing is None else facing,
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
            ox, oz = self.region.origin
            agent.pos = (encode_position(msg.x - ox), encode_position(msg.z - oz))
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
        ack = viewer.records.get(st) if st else _NO_ACK
        if ack is None:  # older than what we remember: start this client afresh
            ack, reply.reset = _NO_ACK, True
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
        if anchor is not None:  # in the form the reply loop reads (jgsl.core.rowloop)
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


class GridProcessCore:
    """All the grid nodes of one grid process (one XMPP component).

    With ``persist`` set, store requests go to ``effects`` (run by the link): agents are
    saved when they log out, time out, and at shutdown; a node's logs are loaded before it
    reports ready and saved as they grow.
    """

    def __init__(self, jid: str, gateways: list[str], settings: GridSettings | None = None, *,
                 start: float = 0.0, key_factory: Callable[[], str] = new_key,
                 maps: dict[str, StringMap] | None = None,
                 ticket_secret: bytes = DEV_TICKET_SECRET,
                 trusted: tuple[str, ...] = (), persist: bool = False,
                 scripts: ScriptLibrary | None = None, rules: RuleSet | None = None) -> None:
        self.jid = jid
        #: The world's node rules: a spawn request for a world no rule serves is refused.
        self.rules = rules
        #: Region scripts (lua/), or None to run nodes without game logic.
        self.scripts = scripts
        self.logic: dict[int, RegionLogic] = {}
        self.persist = persist
        #: Store requests for the adapter (only with ``persist``).
        self.effects: list = []
        #: Set by L{stop}: clients get SC_Closing, nothing changes any more.
        self.closing = False
        #: Nodes whose stored logs are being loaded, and the spawn requests waiting for them.
        self._loading: dict[str, tuple[GridNode, list[tuple[str, int]]]] = {}
        self._ticket_secret = ticket_secret
        self.maps = maps or default_maps()
        self.gateways = [bare(g) for g in gateways]
        #: Gateways whose tickets and spawn requests are accepted.
        self.trusted = set(self.gateways) | {bare(g) for g in trusted}
        self.settings = settings or GridSettings()
        self.nodes: dict[int, GridNode] = {}
        self._next_id = 1
        self._started = start
        self._next_hello = start
        self._next_sweep = start
        self._key_factory = key_factory
        self._drops = DropLog(log)
        self._clock_warnings = DropLog(log, burst=1, window=60.0, prefix="")

    def connected(self, now: float) -> list[Envelope]:
        """Register with the gateways as soon as the link is up."""
        self._next_hello = now
        return self.tick(now)

    def tick(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        if now >= self._next_sweep:
            self._next_sweep = now + self.settings.sweep_interval
            for node in self.nodes.values():
                for agent in node.expire(now):
                    log.info("agent {agent} timed out on node {node}", agent=agent.jid,
                             node=node.id)
                    self._save(node, agent)
        for node in list(self.nodes.values()):
            out += self._node_events(now, node)  # those who timed out (clears the list)
            logic = self.logic.get(node.id)
            if logic is not None and not self.closing:
                out += logic.tick(now)
                out += self._after_script(now, logic)
        if now < self._next_hello or self.closing:
            return out
        self._next_hello = now + self.settings.hello_interval
        hello = pb.GridHello(uptime=now - self._started)
        for node in self.nodes.values():
            hosted = hello.nodes.add(key=node.key, admitted=node.admitted)
            node.admitted = []
            hosted.info.id, hosted.info.jid = node.id, self.jid
            hosted.info.agents, hosted.info.role = node.active_agents, node.role
            hosted.info.instance = node.instance
            node.region.to_info(hosted.info)
        return out + [Envelope(self.jid, gateway, hello) for gateway in self.gateways]

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        msg, sender = envelope.message, bare(envelope.sender)
        if isinstance(msg, pb.SpawnNode):
            return self._spawn(now, sender, msg)
        if isinstance(msg, pb.CloseNode):
            return self._close(now, sender, msg)
        if type(msg) in _NODE_MESSAGES:
            node = self.nodes.get(msg.id)
            if node is None or node.key != msg.sk:
                self._drops.drop(now, "{type} from {sender} for unknown node {id} or wrong key",
                                 type=type(msg).__name__, sender=sender, id=msg.id)
                return []
            if self.closing:  # everything was saved as it was at the stop: change nothing
                if isinstance(msg, pb.Logout):
                    return []
                return [Envelope(self.jid, envelope.sender,
                                 pb.Closing(sk=node.key, reason="shutting down"))]
            if isinstance(msg, pb.Logout):
                agent = node.logout(sender)
                if agent is not None:
                    self._save(node, agent)
                return self._node_events(now, node)
            if sender not in node.agents:
                problem = self._ticket_problem(now, sender, node, msg.ticket)
                if problem:
                    self._drops.drop(now, "{sender} may not join node {id}: {reason}",
                                     sender=sender, id=node.id, reason=problem)
                    return []
                node.admit(sender, msg.ticket.role)
            elif msg.st == 0 and msg.HasField("ticket") and self._ticket_problem(
                    now, sender, node, msg.ticket) is None:
                node.admitted.append(sender)  # a relogin: the gateway counts it once
            if isinstance(msg, pb.NormalUpdate):
                reply = node.normal_update(now, sender, msg)
            else:
                reply = node.observer_update(now, sender, msg)
            if node.rejected:
                for problem in node.rejected:
                    self._drops.drop(now, "rejected field from {problem}", problem=problem)
                node.rejected.clear()
            out = [Envelope(self.jid, envelope.sender, reply)]
            if node.events or node.id in self.logic:  # (no script, nobody came: nothing)
                out += self._node_events(now, node)
            self._save_logs(node)
            return out
        if isinstance(msg, pb.GameMessage):
            return self._game_message(now, sender, msg)
        if isinstance(msg, Bounce):
            return self._bounced(now, sender, msg)
        self._drops.drop(now, "{type} is not for a grid process (from {sender})",
                         type=type(msg).__name__, sender=sender)
        return []

    def _bounced(self, now: float, sender: str, msg: Bounce) -> list[Envelope]:
        """The XMPP server could not deliver to a client: it is gone. Its agents leave now
        (saved, as at a logout) rather than after agent_timeout of silence."""
        if not msg.unreachable:
            return []
        out: list[Envelope] = []
        for node in list(self.nodes.values()):
            agent = node.agents.get(sender)
            if agent is not None and not agent.npc:
                node.logout(sender)
                self._save(node, agent)
                log.info("agent {agent} left node {node}: the XMPP server says it is gone "
                         "({condition})", agent=sender, node=node.id, condition=msg.condition)
                out += self._node_events(now, node)
        return out

    def _ticket_problem(self, now: float, sender: str, node: GridNode,
                        ticket: pb.Ticket) -> str | None:
        skew = self.settings.max_clock_skew
        problem = ticket_problem(self._ticket_secret, ticket, sender, node.id, node.key, now,
                                 self.trusted, skew)
        ahead = issued_ahead(ticket, now)
        if problem is None and ahead > skew:
            self._clock_warnings.drop(
                now, "gateway {gateway}'s clock is {ahead:.1f} s ahead of ours (it issued a "
                "ticket in the future): more than --max-clock-skew {skew:g} s; run NTP on "
                "every host (docs/deploy.md)", gateway=ticket.gateway, ahead=ahead, skew=skew)
        return problem

    # -- region scripts ----------------------------------------------------------------

    def _node_events(self, now: float, node: GridNode) -> list[Envelope]:
        """Agents that entered or left the node, told to its script."""
        events, node.events = node.events, []
        logic = self.logic.get(node.id)
        if logic is None or self.closing:
            return []
        out: list[Envelope] = []
        for kind, jid in events:
            out += logic.agent_event(now, kind, jid)
        return out + self._after_script(now, logic)

    def _after_script(self, now: float, logic: RegionLogic) -> list[Envelope]:
        """Store requests and node changes that follow what a script did."""
        out = self._node_events(now, logic.node) if logic.node.events else []
        writes, logic.effects = logic.effects, []
        for key in logic.key_requests:
            if self.persist:
                self.effects.append(LoadKey(logic.scope, key, logic.node.id))
            else:
                out += logic.key_loaded(now, key, None)
        if self.persist:
            self.effects += writes
        self._save_logs(logic.node)
        return out

    def _game_message(self, now: float, sender: str, msg: pb.GameMessage) -> list[Envelope]:
        node = self.nodes.get(msg.id)
        if node is None or node.key != msg.sk or sender not in node.agents \
                or node.agents[sender].mode is not AgentMode.AGENT or self.closing:
            self._drops.drop(now, "game message from {sender} for node {id}: not an agent "
                             "there (or wrong key)", sender=sender, id=msg.id)
            return []
        try:
            payload = decode_payload(msg.type, msg.body)
        except (UnknownPayloadError, DecodeError) as e:
            self._drops.drop(now, "game message {type!r} from {sender}: {reason}",
                             type=msg.type, sender=sender, reason=str(e) or "does not decode")
            return []
        problem = message_text_problem(payload)
        if problem:
            self._drops.drop(now, "game message {type!r} from {sender} refused: {reason}",
                             type=msg.type, sender=sender, reason=problem)
            return []
        logic = self.logic.get(node.id)
        if logic is None:
            self._drops.drop(now, "game message from {sender}: node {id} runs no script",
                             sender=sender, id=node.id)
            return []
        out = logic.message(now, sender, msg.type, message_to_data(payload))
        return out + self._after_script(now, logic)

    def _start_logic(self, now: float, node: GridNode) -> list[Envelope]:
        module = self.scripts.module_for(node.region) if self.scripts else None
        if module is None:
            return []
        logic = RegionLogic(node, module, self.jid, lambda agent: self._save(node, agent))
        try:
            logic.script = self.scripts.build(module, logic)
        except ScriptError as e:
            log.error("grid node {id}: script {module} does not load, the node runs without "
                      "it until a reload fixes it: {error}", id=node.id, module=module,
                      error=str(e))
        self.logic[node.id] = logic
        log.info("grid node {id} runs script {module}", id=node.id, module=module)
        return logic.call(now, "OnInit", logic.info()) + self._after_script(now, logic)

    def _stop_logic(self, now: float, node_id: int) -> list[Envelope]:
        logic = self.logic.pop(node_id, None)
        if logic is None:
            return []
        out = logic.call(now, "OnStop")
        return out + self._after_script(now, logic)

    def reload(self, now: float) -> tuple[list[str], int, list[Envelope]]:
        """Reload every script that changed, all or none: (errors, reloaded, envelopes).

        New VMs are built beside the old ones and handed their state through OnReload; if
        any fails, the old ones keep running and nothing changes."""
        if self.scripts is None:
            return ["this grid process runs no scripts"], 0, []
        logics = list(self.logic.values())
        swaps, errors = reload_scripts(self.scripts, logics, now)
        if errors:
            for error in errors:
                log.error("reload refused, the old scripts keep running: {error}", error=error)
            return errors, 0, []
        out: list[Envelope] = []
        for logic, fresh in swaps:
            old, logic.script = logic.script, fresh
            dropped = old.parked if old is not None else 0
            log.info("grid node {id}: script {module} reloaded ({dropped} parked coroutines "
                     "of the old version dropped)", id=logic.node.id, module=logic.module,
                     dropped=dropped)
            out += logic.apply(now) + self._after_script(now, logic)
        for node in list(self.nodes.values()):  # scripts that appeared since the nodes started
            if node.id not in self.logic:
                out += self._start_logic(now, node)
        return [], len(swaps), out

    def _close(self, now: float, sender: str, msg: pb.CloseNode) -> list[Envelope]:
        node = self.nodes.get(msg.id)
        if sender not in self.trusted or node is None or node.key != msg.key:
            self._drops.drop(now, "GRID_CLOSE_NODE for node {id} from {sender} ignored",
                             id=msg.id, sender=sender)
            return []
        if node.agents:
            log.info("node {id} not closed: it has agents again", id=node.id)
            return []
        out = self._stop_logic(now, node.id)
        del self.nodes[msg.id]
        log.info("grid node {id} closed ({region})", id=node.id, region=str(node.region))
        return out

    # -- persistence -------------------------------------------------------------------

    def stop(self, now: float) -> list[Envelope]:
        """Shutting down: SC_Closing to every client of every node, and save every agent.

        From now on updates are answered with SC_Closing and change nothing, so what was
        saved is what the clients last had acknowledged.
        """
        if self.closing:
            return []
        # The gateways first: they route no login here from now on, so the clients told
        # below find their regions served elsewhere when they log in again.
        out = [Envelope(self.jid, gateway, pb.GridClosing(reason="shutting down"))
               for gateway in self.gateways]
        for node_id in list(self.logic):  # OnStop may still store keys or say goodbye
            out += self._stop_logic(now, node_id)
        self.closing = True
        saved = clients = 0
        for node in self.nodes.values():
            for agent in node.agents.values():
                if agent.npc:
                    continue
                clients += 1
                out.append(Envelope(self.jid, agent.jid,
                                    pb.Closing(sk=node.key, reason="shutting down")))
                saved += self._save(node, agent)
        log.info("closing: SC_Closing sent to {clients} clients, {saved} agents saved",
                 clients=clients, saved=saved)
        return out

    def republish(self, now: float) -> list[Envelope]:
        """The store lost what it held: save every live agent and node log again."""
        if not self.persist:
            return []
        agents = edits = 0
        for node in self.nodes.values():
            for agent in node.agents.values():
                if not agent.npc:
                    agents += self._save(node, agent)
            if node.persist_logs:
                for kind in LOG_KINDS:
                    for seq, edit in getattr(node, kind).entries:
                        self.effects.append(SaveEdit(node.name, kind, seq, edit))
                        edits += 1
        log.info("re-publishing {agents} live agents and {edits} node log entries to the "
                 "store", agents=agents, edits=edits)
        return []

    def _save(self, node: GridNode, agent: Agent) -> bool:
        record = node.record(agent) if self.persist else None
        if record is not None:
            self.effects.append(SaveAgent(node.region.worldpath, bare(agent.jid), record))
        return record is not None

    def _save_logs(self, node: GridNode) -> None:
        for kind in LOG_KINDS:
            edits = getattr(node, kind)
            if not edits.changes:
                continue  # (every update asks)
            changes = edits.drain()
            if self.persist and node.persist_logs:
                self.effects += [SaveEdit(node.name, kind, seq, edit) for seq, edit in changes]

    def effect_done(self, now: float, effect, outcome) -> list[Envelope]:
        if isinstance(effect, LoadKey):
            return self._key_loaded(now, effect, outcome)
        if not isinstance(effect, LoadNode):
            return []
        return self._loaded(now, effect.node, outcome or NodeLogs(), None)

    def _key_loaded(self, now: float, effect: LoadKey, text) -> list[Envelope]:
        logic = self.logic.get(effect.node)
        if logic is None or logic.scope != effect.scope:
            return []  # the node closed meanwhile
        return logic.key_loaded(now, effect.key, text) + self._after_script(now, logic)

    def effect_failed(self, now: float, effect, reason: str) -> list[Envelope]:
        if isinstance(effect, LoadKey):
            log.error("store: script key {key} unreadable ({reason}); the script gets nil",
                      key=effect.key, reason=reason)
            return self._key_loaded(now, effect, None)
        if not isinstance(effect, LoadNode):
            log.error("store: {effect} failed: {reason}", effect=type(effect).__name__,
                      reason=reason)
            return []
        return self._loaded(now, effect.node, NodeLogs(), reason)

    def _loaded(self, now: float, name: str, logs: NodeLogs, problem: str | None) -> list[Envelope]:
        """The node's stored logs are in (or could not be read): it is ready."""
        node, waiting = self._loading.pop(name, (None, []))
        if node is None:
            return []
        if problem is not None:
            node.persist_logs = False
            log.warn("grid node {id} ({name}): stored logs unavailable ({reason}); it starts "
                     "without them and its edits this session are not saved", id=node.id,
                     name=name, reason=problem)
        else:
            node.creations.restore(logs.creations)
            node.env.restore(logs.env)
            if logs.creations or logs.env:
                log.info("grid node {id} ({name}): restored {creations} creations and {env} "
                         "environment entries", id=node.id, name=name,
                         creations=len(logs.creations), env=len(logs.env))
        if self.closing:
            return [Envelope(self.jid, gateway, pb.NodeReady(
                request=request, refused=True, reason="shutting down"))
                for gateway, request in waiting]
        self.nodes[node.id] = node
        log.info("grid node {id} spawned for {region}", id=node.id, region=str(node.region))
        return [Envelope(self.jid, gateway, pb.NodeReady(request=request, id=node.id,
                                                          key=node.key))
                for gateway, request in waiting] + self._start_logic(now, node)

    def _spawn_problem(self, msg: pb.SpawnNode) -> str | None:
        """Why no node is made for a spawn request (even a trusted gateway's)."""
        problem = message_text_problem(msg)
        if problem:
            return problem
        if not msg.worldpath or len(msg.worldpath) > MAX_STRING:
            return "no world path, or a longer one than any"
        if self.rules is not None and not self.rules.knows_world(msg.worldpath):
            return f"no rule serves world {msg.worldpath}"
        if msg.HasField("gsize") and not (
                math.isfinite(msg.gsize) and 0 < msg.gsize <= MAX_COORDINATE):
            return f"region size {msg.gsize} is out of range"
        return None

    def _spawn(self, now: float, sender: str, msg: pb.SpawnNode) -> list[Envelope]:
        if sender not in self.trusted:
            self._drops.drop(now, "GRID_SPAWN_NODE from untrusted {sender}", sender=sender)
            return []
        if self.closing:
            return [Envelope(self.jid, sender, pb.NodeReady(
                request=msg.request, refused=True, reason="shutting down"))]
        problem = self._spawn_problem(msg)
        if problem:
            self._drops.drop(now, "GRID_SPAWN_NODE from {sender} refused: {reason}",
                             sender=sender, reason=problem)
            return [Envelope(self.jid, sender, pb.NodeReady(
                request=msg.request, refused=True, reason=problem))]
        region = Region.from_fields(msg.worldpath, msg.gx, msg.gy,
                                    msg.gsize if msg.HasField("gsize") else None)
        existing = next((n for n in self.nodes.values()
                         if (n.region, n.instance) == (region, msg.instance)), None)
        if existing is None:
            name = f"{region}#{msg.instance}"
            if name in self._loading:  # asked again while its logs load
                self._loading[name][1].append((sender, msg.request))
                return []
            node = GridNode(self._next_id, self._key_factory(), region, msg.role or "guest",
                            msg.max_users, self.settings, self.maps, msg.instance)
            self._next_id += 1
            self._loading[name] = (node, [(sender, msg.request)])
            if self.persist:
                self.effects.append(LoadNode(name))
                return []
            return self._loaded(now, name, NodeLogs(), None)
        return [Envelope(self.jid, sender,
                         pb.NodeReady(request=msg.request, id=existing.id, key=existing.key))]


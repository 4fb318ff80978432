"""A grid node: one region's agents, their changes by frame, and each client's reply.

A grid node simulates one region: it keeps every agent's fields stamped with the node's frame
id and answers each client with the fields changed since the frame the client echoes back
(``st``), so a lost reply only means the same changes are sent again. Sans-IO: methods take
``now`` and messages and return messages.
"""

from __future__ import annotations

import heapq
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
from jgsl.core.jids import bare
from jgsl.core.region import Region
from jgsl.core.reply.builder import ReplyBuilder
from jgsl.core.safetext import Logger, text_problem
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.core.tracker import ValueTracker
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
        #: The node's frame id ("timeid"): one per handled update, so every reply is unique.
        self.frame = 0
        self.agents: dict[str, Agent] = {}
        self._free: list[int] = []  # slots given back, reused lowest first
        #: Which agents each viewer gets, and their rows (jgsl.core.reply).
        self._replies = ReplyBuilder(self.maps, settings.sense_radius,
                                     settings.max_reply_bytes, settings.max_recover)
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
            slot = heapq.heappop(self._free) if self._free else len(self.agents)
            agent = Agent(jid, slot, mode, now,
                          role=self._roles.pop(jid, self.role), npc=npc)
            self.agents[jid] = agent
            self._replies.occupy(agent, self.frame)
            if mode is AgentMode.AGENT and not npc:
                self.events.append(("enter", jid))
        elif agent.mode is not mode:
            self._replies.place(agent, None)
            agent.mode, agent.pos = mode, None
            agent.trackers.clear()
            self._replies.changed(agent, self.frame)
            self.events.append(("enter" if mode is AgentMode.AGENT else "leave", jid))
        agent.last_active = now
        return agent

    def _remove(self, agent: Agent) -> None:
        if agent.mode is AgentMode.AGENT and not agent.npc:
            self.events.append(("leave", agent.jid))
        self._replies.vacate(agent)
        del self.agents[agent.jid]
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
        self._replies.changed(agent, frame)
        rx, rz = trackers.get("rx"), trackers.get("rz")
        agent.pos = None if rx is None or rz is None else (rx.value, rz.value)
        if agent.mode is AgentMode.AGENT:
            self._replies.place(agent, agent.pos)

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
        fresh_ack.agents = self._replies.reply(reply, viewer, known, recover, frame, others)
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

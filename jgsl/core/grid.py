"""Grid processes and the grid nodes they host.

A grid node simulates one region: it keeps every agent's fields stamped with the node's frame
id and answers each client with the fields changed since the frame the client echoes back
(``st``), so a lost reply only means the same changes are sent again. Sans-IO: methods take
``now`` and envelopes and return envelopes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.logger import Logger

from jgsl.core.droplog import DropLog
from jgsl.core.fields import MAX_STRING, FieldHistory
from jgsl.core.gateway import bare
from jgsl.core.keys import new_key
from jgsl.core.region import Region
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

log = Logger(namespace="jgsl.grid")


class AgentMode(enum.Enum):
    AGENT = 1  # sends normal updates; broadcast to others
    OBSERVER = 2  # watches from a neighbouring region; never broadcast


@dataclass
class GridSettings:
    #: Inactive agents are removed after this many seconds (original ClientTimeOut).
    agent_timeout: float = 20.0
    #: Seconds between GRID_HELLO heartbeats to the gateways.
    hello_interval: float = 2.0
    #: Most names served from one client's recover list.
    max_recover: int = 5


@dataclass
class Agent:
    jid: str
    mode: AgentMode
    last_active: float
    fields: FieldHistory = field(default_factory=FieldHistory)


def agent_name(jid: str, reader: str) -> str:
    """The agent's name as a reader sees it: its node part if both share a domain."""
    node, _, domain = jid.partition("@")
    return node if domain and domain == reader.partition("@")[2] else jid


def agent_jid(name: str, reader: str) -> str:
    """Inverse of L{agent_name}."""
    return name if "@" in name else f"{name}@{reader.partition('@')[2]}"


def _clean_state(state: pb.AgentState) -> pb.AgentState | None:
    """The state without the fields a client may not set to these values; None if all bad."""
    for descriptor, value in state.ListFields():
        if isinstance(value, str) and len(value) > MAX_STRING:
            state.ClearField(descriptor.name)
        elif descriptor.name == "facing" and value > 255:
            state.ClearField(descriptor.name)
    return state


class GridNode:
    def __init__(self, node_id: int, key: str, region: Region, role: str, max_users: int,
                 settings: GridSettings) -> None:
        self.id = node_id
        self.key = key
        self.region = region
        self.role = role
        self.max_users = max_users
        self.settings = settings
        #: The node's frame id ("timeid"); advances when some agent sends data.
        self.frame = 1
        self.agents: dict[str, Agent] = {}

    @property
    def active_agents(self) -> int:
        return sum(1 for a in self.agents.values() if a.mode is AgentMode.AGENT)

    def _agent(self, now: float, jid: str, mode: AgentMode) -> Agent:
        agent = self.agents.get(jid)
        if agent is None:
            agent = self.agents[jid] = Agent(jid, mode, now)
        agent.mode, agent.last_active = mode, now
        return agent

    def normal_update(self, now: float, sender: str, msg: pb.NormalUpdate) -> pb.NormalUpdateReply:
        agent = self._agent(now, sender, AgentMode.AGENT)
        if msg.agent.HasField("data"):
            state = _clean_state(msg.agent.data)
            if state is not None and state.ListFields():
                self.frame += 1
                agent.fields.push(state, self.frame)
        reply = self._reply(sender, msg.st, msg.recover, others=not msg.dummy)
        if agent.fields.intact():
            reply.ct = msg.ct  # otherwise absent: "send me everything again"
        return reply

    def observer_update(self, now: float, sender: str,
                        msg: pb.ObserverUpdate) -> pb.NormalUpdateReply:
        self._agent(now, sender, AgentMode.OBSERVER)
        return self._reply(sender, msg.st, msg.recover, others=True)

    def logout(self, sender: str) -> None:
        """Forget the agent at once: the original kept it (and leaked some) for 20 s."""
        self.agents.pop(sender, None)

    def expire(self, now: float) -> list[str]:
        gone = [jid for jid, a in self.agents.items()
                if now - a.last_active > self.settings.agent_timeout]
        for jid in gone:
            del self.agents[jid]
        return gone

    def _reply(self, reader: str, st: int, recover, others: bool) -> pb.NormalUpdateReply:
        reply = pb.NormalUpdateReply(sk=self.key, id=self.id, st=self.frame)
        if not others:
            return reply
        for jid, agent in self.agents.items():
            if jid == reader or agent.mode is not AgentMode.AGENT:
                continue
            changed = agent.fields.since(st)
            if changed is None:
                reply.ping.append(agent_name(jid, reader))
            else:
                reply.agents.add(name=agent_name(jid, reader), state=changed)
        sent = {entry.name for entry in reply.agents}
        for name in recover[: self.settings.max_recover]:
            agent = self.agents.get(agent_jid(name, reader))
            if agent is not None and name not in sent:
                reply.agents.add(name=name, state=agent.fields.full())
                sent.add(name)
        return reply


class GridProcessCore:
    """All the grid nodes of one grid process (one XMPP component)."""

    def __init__(self, jid: str, gateways: list[str], settings: GridSettings | None = None, *,
                 start: float = 0.0, key_factory: Callable[[], str] = new_key) -> None:
        self.jid = jid
        self.gateways = [bare(g) for g in gateways]
        self.settings = settings or GridSettings()
        self.nodes: dict[int, GridNode] = {}
        self._next_id = 1
        self._started = start
        self._next_hello = start
        self._key_factory = key_factory
        self._drops = DropLog(log)

    def connected(self, now: float) -> list[Envelope]:
        """Register with the gateways as soon as the link is up."""
        self._next_hello = now
        return self.tick(now)

    def tick(self, now: float) -> list[Envelope]:
        for node in self.nodes.values():
            for jid in node.expire(now):
                log.info("agent {agent} timed out on node {node}", agent=jid, node=node.id)
        if now < self._next_hello:
            return []
        self._next_hello = now + self.settings.hello_interval
        hello = pb.GridHello(uptime=now - self._started)
        for node in self.nodes.values():
            hosted = hello.nodes.add(key=node.key)
            hosted.info.id, hosted.info.jid = node.id, self.jid
            hosted.info.agents, hosted.info.role = node.active_agents, node.role
            node.region.to_info(hosted.info)
        return [Envelope(self.jid, gateway, hello) for gateway in self.gateways]

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        msg, sender = envelope.message, bare(envelope.sender)
        if isinstance(msg, pb.SpawnNode):
            return self._spawn(now, sender, msg)
        if isinstance(msg, pb.NormalUpdate | pb.ObserverUpdate | pb.Logout):
            node = self.nodes.get(msg.id)
            if node is None or node.key != msg.sk:
                self._drops.drop(now, "{type} from {sender} for unknown node {id} or wrong key",
                                 type=type(msg).__name__, sender=sender, id=msg.id)
                return []
            if isinstance(msg, pb.Logout):
                node.logout(sender)
                return []
            if isinstance(msg, pb.NormalUpdate):
                reply = node.normal_update(now, sender, msg)
            else:
                reply = node.observer_update(now, sender, msg)
            return [Envelope(self.jid, envelope.sender, reply)]
        self._drops.drop(now, "{type} is not for a grid process (from {sender})",
                         type=type(msg).__name__, sender=sender)
        return []

    def _spawn(self, now: float, sender: str, msg: pb.SpawnNode) -> list[Envelope]:
        if sender not in self.gateways:
            self._drops.drop(now, "GRID_SPAWN_NODE from untrusted {sender}", sender=sender)
            return []
        region = Region.from_fields(msg.worldpath, msg.gx, msg.gy,
                                    msg.gsize if msg.HasField("gsize") else None)
        existing = next((n for n in self.nodes.values() if n.region == region), None)
        if existing is None:
            existing = GridNode(self._next_id, self._key_factory(), region, msg.role or "guest",
                                msg.max_users, self.settings)
            self.nodes[existing.id] = existing
            self._next_id += 1
            log.info("grid node {id} spawned for {region}", id=existing.id, region=str(region))
        return [Envelope(self.jid, sender,
                         pb.NodeReady(request=msg.request, id=existing.id, key=existing.key))]

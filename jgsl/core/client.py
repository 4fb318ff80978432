"""The JGSL client: gateway ping and login, then normal updates to the grid node.

Sans-IO: L{ClientCore.start}, L{ClientCore.tick} and L{ClientCore.receive} take ``now``
and return envelopes to send; what happens is reported as L{Event}s to ``on_event``.
The states and their transitions are in L{TRANSITIONS} and drawn in docs/client-states.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.logger import Logger

from jgsl.core.agenttable import TableError, read_table
from jgsl.core.fields import (
    NUMERIC,
    REQUIRED,
    FieldHistory,
    decode_facing,
    decode_position,
    encode_facing,
    encode_position,
)
from jgsl.core.gateway import CLIENT_VERSION, SERVER_VERSION
from jgsl.core.jids import agent_jid, bare
from jgsl.core.keys import new_key
from jgsl.core.region import Region
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

log = Logger(namespace="jgsl.client")


class State(enum.Enum):
    IDLE = "idle"
    PINGING = "pinging"  # CS_PING sent, waiting for SC_PING_REPLY
    LOGGING_IN = "logging-in"  # CS_Login sent, waiting for SC_Login_Reply
    UPDATING = "updating"  # signed in to a grid node, exchanging normal updates


TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.PINGING}),
    State.PINGING: frozenset({State.PINGING, State.LOGGING_IN, State.IDLE}),
    State.LOGGING_IN: frozenset({State.UPDATING, State.PINGING, State.IDLE}),
    State.UPDATING: frozenset({State.PINGING, State.IDLE}),
}


class EventKind(enum.Enum):
    SIGNED_IN = "signed-in"
    SIGNED_OUT = "signed-out"
    CONNECTION_TIMEOUT = "connection-timeout"
    USER_COME = "user-come"
    USER_LEAVE = "user-leave"
    CREATION = "creation"
    ENV = "env"
    LOG = "log"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    jid: str = ""
    position: tuple[float, float, float] | None = None
    text: str = ""
    edit: pb.WorldEdit | None = None


@dataclass
class _PendingEdit:
    env: bool
    edit: pb.WorldEdit
    sent_ct: int | None = None


@dataclass
class ClientSettings:
    update_interval: float = 3.0
    #: A request unanswered this long has timed out (original ServerTimeOut).
    request_timeout: float = 20.0
    #: Timeouts in a row after which the grid node is dead (original MaxTimeOutRetry + 1).
    grid_retries: int = 1
    #: Remote agents not heard of for this long leave (original AgentTimeOut).
    agent_timeout: float = 20.0
    #: Delay before trying again after a refused login.
    retry_delay: float = 5.0


@dataclass
class Avatar:
    """The player's own agent, in absolute world coordinates."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    facing: float = 0.0
    asset_file: str = ""
    nickname: str = ""
    dummy: bool = False


@dataclass
class RemoteAgent:
    """Another agent as this client knows it: the wire values of its fields."""

    jid: str
    last_seen: float
    values: dict[str, object] = field(default_factory=dict)
    announced: bool = False

    def position(self, region: Region) -> tuple[float, float, float]:
        ox, oz = region.origin
        v = self.values
        return (ox + decode_position(v.get("rx", 0)), decode_position(v.get("y", 0)),
                oz + decode_position(v.get("rz", 0)))

    @property
    def facing(self) -> float:
        return decode_facing(self.values.get("facing", 127))

    def intact(self) -> bool:
        return all(name in self.values for name in REQUIRED)


@dataclass
class GridProxy:
    """The client's view of one grid node: keys, region and the delta counters."""

    jid: str
    node_id: int
    key: str
    region: Region
    role: str
    st: int = 0  # last frame id the node sent us
    ct: int = 0  # our frame the node last echoed (0: send everything)
    waiting_since: float | None = None
    last_sent: float = float("-inf")
    timeouts: int = 0
    #: The node's agents as this client knows them, by slot.
    agents: dict[int, RemoteAgent] = field(default_factory=dict)
    #: Slots whose full state to ask for with the next update.
    recover: list[int] = field(default_factory=list)
    #: The gateway's ticket, shown to the node until it knows us.
    ticket: pb.Ticket | None = None


class ClientCore:
    def __init__(self, jid: str, gateway: str, worldpath: str, avatar: Avatar,
                 settings: ClientSettings | None = None, *,
                 on_event: Callable[[Event], None] = lambda e: None,
                 key_factory: Callable[[], str] = new_key,
                 maps: dict[str, StringMap] | None = None) -> None:
        self.jid = jid
        self.gateway = gateway
        self.worldpath = worldpath
        self.avatar = avatar
        self.settings = settings or ClientSettings()
        self.on_event = on_event
        self._key_factory = key_factory
        self.state = State.IDLE
        self.csk = key_factory()
        self.sk = ""  # gateway key, once the gateway answered
        self.proxy: GridProxy | None = None
        self.timeid = 1  # our frame counter ("ct")
        self.own = FieldHistory()
        self.maps = maps or default_maps()
        #: Every agent this client sees, by JID.
        self.agents: dict[str, RemoteAgent] = {}
        self._waiting_since = 0.0
        self._retry_at: float | None = None
        self._edits: list[_PendingEdit] = []
        self._edit_seq = 0
        #: Highest edit sequence number applied per (log, author): replays are not re-applied.
        self._applied: dict[tuple[EventKind, str], int] = {}

    def create(self, kind: str, **params: str) -> None:
        """Create an object; sent with the next update and resent until acknowledged."""
        self._queue_edit(False, kind, params)

    def set_env(self, kind: str, **params: str) -> None:
        """Change the environment (sky, ocean, ...), like L{create}."""
        self._queue_edit(True, kind, params)

    def _queue_edit(self, env: bool, kind: str, params: dict[str, str]) -> None:
        self._edit_seq += 1
        self._edits.append(_PendingEdit(env, pb.WorldEdit(kind=kind, params=params,
                                                          seq=self._edit_seq)))

    # -- state machine -----------------------------------------------------------------

    def _enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"client {self.jid}: no transition {self.state} -> {state}")
        self.state = state

    def start(self, now: float) -> list[Envelope]:
        self._retry_at = None
        self._enter(State.PINGING)
        self._waiting_since = now
        return [self._to(self.gateway, pb.Ping(csk=self.csk, sk=self.sk))]

    def stop(self, now: float) -> list[Envelope]:
        """Log out of the grid node and go idle."""
        out = []
        if self.proxy is not None:
            proxy = self.proxy
            out.append(self._to(proxy.jid, pb.Logout(sk=proxy.key, id=proxy.node_id)))
        if self.state is not State.IDLE:
            self._enter(State.IDLE)
            self._signed_out("stopped")
        return out

    def tick(self, now: float) -> list[Envelope]:
        self._expire_agents(now)
        if self.state is State.IDLE:
            if self._retry_at is not None and now >= self._retry_at:
                return self.start(now)
            return []
        if self.state in (State.PINGING, State.LOGGING_IN):
            if now - self._waiting_since > self.settings.request_timeout:
                self._emit(Event(EventKind.CONNECTION_TIMEOUT, self.gateway,
                                 text="gateway did not answer"))
                return self._restart(now)
            return []
        proxy = self.proxy
        assert proxy is not None
        if proxy.waiting_since is not None:
            if now - proxy.waiting_since <= self.settings.request_timeout:
                return []
            proxy.timeouts += 1
            if proxy.timeouts > self.settings.grid_retries:
                self._emit(Event(EventKind.CONNECTION_TIMEOUT, proxy.jid,
                                 text=f"grid node {proxy.node_id} is dead"))
                self._signed_out("grid node dead")
                return self._restart(now)
            proxy.waiting_since = None  # retry now
        elif now - proxy.last_sent < self.settings.update_interval:
            return []
        return [self._normal_update(now, proxy)]

    def _restart(self, now: float) -> list[Envelope]:
        if self.proxy is not None:
            self._forget(self.proxy, list(self.proxy.agents))
        self.proxy = None
        self.sk = ""
        self.csk = self._key_factory()
        self._enter(State.PINGING)
        self._waiting_since = now
        return [self._to(self.gateway, pb.Ping(csk=self.csk))]

    # -- input -------------------------------------------------------------------------

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        msg = envelope.message
        if isinstance(msg, pb.PingReply):
            return self._on_ping_reply(now, envelope.sender, msg)
        if isinstance(msg, pb.LoginReply):
            return self._on_login_reply(now, envelope.sender, msg)
        if isinstance(msg, pb.NormalUpdateReply):
            return self._on_update(now, envelope.sender, msg)
        if isinstance(msg, pb.Closing):
            if self.proxy is not None and msg.sk in (self.proxy.key, self.sk):
                self._signed_out(msg.reason or "server closing")
                self.proxy = None
                self._enter(State.IDLE)
            return []
        self._log(f"ignored {type(msg).__name__} from {envelope.sender}")
        return []

    def _on_ping_reply(self, now: float, sender: str, msg: pb.PingReply) -> list[Envelope]:
        if self.state is not State.PINGING or msg.csk != self.csk or not msg.sk:
            self._log(f"ignored ping reply with an invalid session key from {sender}")
            return []
        self.sk = msg.sk
        self._enter(State.LOGGING_IN)
        self._waiting_since = now
        a = self.avatar
        return [self._to(self.gateway, pb.Login(
            sk=self.sk, csk=self.csk, worldpath=self.worldpath, x=a.x, y=a.y, z=a.z,
            client_version=CLIENT_VERSION))]

    def _on_login_reply(self, now: float, sender: str, msg: pb.LoginReply) -> list[Envelope]:
        if self.state is not State.LOGGING_IN or msg.csk != self.csk:
            self._log(f"ignored login reply from {sender}")
            return []
        if msg.refused or not msg.gk:
            self._log(f"the JGSL server at {sender} refused your login: {msg.reason}")
            self._enter(State.IDLE)
            self._retry_at = now + self.settings.retry_delay
            self._signed_out(msg.reason or "refused")
            return []
        if msg.client_version > CLIENT_VERSION or msg.server_version < SERVER_VERSION:
            self._log(f"incompatible server version {msg.server_version} at {sender}")
            self._enter(State.IDLE)
            self._signed_out("incompatible version")
            return []
        region = Region.from_fields(msg.worldpath, msg.gx, msg.gy,
                                    msg.gsize if msg.HasField("gsize") else None)
        self.proxy = GridProxy(msg.gjid, msg.gid, msg.gk, region, msg.role, ticket=msg.ticket)
        self._enter(State.UPDATING)
        self._emit(Event(EventKind.SIGNED_IN, msg.gjid,
                         text=f"grid node {msg.gid} serves {region}"))
        return [self._normal_update(now, self.proxy)]

    def _on_update(self, now: float, sender: str, msg: pb.NormalUpdateReply) -> list[Envelope]:
        proxy = self.proxy
        if proxy is None or msg.sk != proxy.key or bare(sender) != bare(proxy.jid):
            self._log(f"ignored update with an unknown key from {sender}")
            return []
        if msg.base != proxy.st and not msg.reset:
            return []  # answers an older request (a retry crossed it): deltas do not apply
        proxy.waiting_since, proxy.timeouts = None, 0
        if msg.reset:
            self._forget(proxy, list(proxy.agents))
        try:
            rows = list(read_table(msg.agents, self.maps))
        except TableError as e:
            self._log(f"bad agent table from {sender}: {e}; asking for everything again")
            self._forget(proxy, list(proxy.agents))
            proxy.st = 0
            return []
        self._forget(proxy, _undelta(msg.gone))
        for row in rows:
            self._apply(now, proxy, row)
        for slot in _undelta(msg.ping):
            agent = proxy.agents.get(slot)
            if agent is not None:
                agent.last_seen = now
        for kind, edits in ((EventKind.CREATION, msg.creations), (EventKind.ENV, msg.env)):
            for edit in edits:
                key = (kind, edit.author)
                if edit.seq and edit.seq <= self._applied.get(key, 0):
                    continue
                self._applied[key] = max(edit.seq, self._applied.get(key, 0))
                self._emit(Event(kind, edit.author, edit=edit))
        if msg.HasField("ct"):  # the node has handled every edit we sent up to this ct
            self._edits = [p for p in self._edits if p.sent_ct is None or p.sent_ct > msg.ct]
        proxy.st = msg.st
        proxy.ct = msg.ct if msg.HasField("ct") and not msg.want_full else 0
        if msg.more:
            proxy.last_sent = float("-inf")  # the rest is waiting: ask at the next tick
        return []

    def _apply(self, now: float, proxy: GridProxy, row) -> None:
        values = row.values
        agent = proxy.agents.get(row.slot)
        if "name" in values:
            jid = agent_jid(values.pop("name"), self.jid)
            if agent is not None and agent.jid != jid:
                self._forget(proxy, [row.slot])
                agent = None
            if agent is None:
                agent = proxy.agents[row.slot] = self.agents[jid] = RemoteAgent(jid, now)
        if agent is None:
            proxy.recover.append(row.slot)  # a change for an agent we never met
            return
        if row.delta:
            for name, value in values.items():
                if name in NUMERIC:
                    old = agent.values.get(name)
                    if old is None:
                        proxy.recover.append(row.slot)
                        return
                    value = (old + value) % 256 if name == "facing" else old + value
                agent.values[name] = value
        else:
            agent.values.update(values)
        agent.last_seen = now
        if not agent.announced and agent.intact():
            agent.announced = True
            self._emit(Event(EventKind.USER_COME, agent.jid, agent.position(proxy.region)))

    def _forget(self, proxy: GridProxy, slots) -> None:
        for slot in slots:
            agent = proxy.agents.pop(slot, None)
            if agent is None:
                continue
            if self.agents.get(agent.jid) is agent:
                del self.agents[agent.jid]
            if agent.announced:
                self._emit(Event(EventKind.USER_LEAVE, agent.jid))

    # -- helpers -----------------------------------------------------------------------

    def _normal_update(self, now: float, proxy: GridProxy) -> Envelope:
        self.timeid += 1
        a = self.avatar
        ox, oz = proxy.region.origin
        state = pb.AgentState(rx=encode_position(a.x - ox), y=encode_position(a.y),
                              rz=encode_position(a.z - oz), facing=encode_facing(a.facing))
        if a.asset_file:
            state.asset_file = a.asset_file
        if a.nickname:
            state.nickname = a.nickname
        self.own.push(state, self.timeid)
        msg = pb.NormalUpdate(sk=proxy.key, id=proxy.node_id, st=proxy.st, ct=self.timeid,
                              dummy=a.dummy, recover=sorted(set(proxy.recover))[:5])
        proxy.recover.clear()
        changed = self.own.since(proxy.ct)
        if changed is not None:
            msg.agent.data.CopyFrom(changed)
        if proxy.st == 0 and proxy.ticket is not None:
            msg.ticket.CopyFrom(proxy.ticket)  # the node does not know us yet
        for pending in self._edits[:10]:
            (msg.agent.env if pending.env else msg.agent.creations).append(pending.edit)
            pending.sent_ct = self.timeid
        proxy.waiting_since = proxy.last_sent = now
        return self._to(proxy.jid, msg)

    def _expire_agents(self, now: float) -> None:
        """Agents not heard of for agent_timeout leave (a safety net: nodes send `gone`)."""
        proxy = self.proxy
        if proxy is None:
            return
        self._forget(proxy, [slot for slot, agent in proxy.agents.items()
                             if now - agent.last_seen > self.settings.agent_timeout])

    def _signed_out(self, reason: str) -> None:
        self._emit(Event(EventKind.SIGNED_OUT, self.gateway, text=reason))

    def _log(self, text: str) -> None:
        self._emit(Event(EventKind.LOG, text=text))

    def _emit(self, event: Event) -> None:
        self.on_event(event)

    def _to(self, recipient: str, message) -> Envelope:
        return Envelope(self.jid, recipient, message)


def _undelta(steps) -> list[int]:
    """Slots from a delta-coded ascending column."""
    out, slot = [], 0
    for step in steps:
        slot += step
        out.append(slot)
    return out

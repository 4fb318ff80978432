"""The JGSL client: gateway ping and login, then updates to the grid nodes around the player.

Each tick samples the player's position and four corners ``corner_offset`` away (original
§7.4): the node under the centre gets CS_NormalUpdate, nodes under corners get
CS_ObserverUpdate (so agents just over a border are seen), points no known node covers get a
CS_Login, and nodes no longer touched get CS_Logout. Each node has at most one request in
flight, retried once after a timeout (from measured round trips) and then dropped. Agents are
merged across nodes by JID, with a short grace before "user leave", so an agent moving
between nodes shows no gap.

Sans-IO: L{ClientCore.start}, L{ClientCore.tick} and L{ClientCore.receive} take ``now``
and return envelopes to send; what happens is reported as L{Event}s to ``on_event``.
The states and their transitions are in L{TRANSITIONS} and drawn in docs/client-states.md.
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from jgsl.core.fields import (
    NUMERIC,
    REQUIRED,
    FieldHistory,
    decode_facing,
    decode_position,
    encode_facing,
    encode_position,
)
from jgsl.core.jids import agent_jid, bare
from jgsl.core.keys import new_key
from jgsl.core.region import Region
from jgsl.core.reply.agenttable import TableError, read_table
from jgsl.core.roundtrip import RoundTripTimer
from jgsl.core.safetext import Logger
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope
from jgsl.wire.game import DecodeError, UnknownPayloadError, decode_payload, payload_class
from jgsl.wire.messages import CLIENT_VERSION, SERVER_VERSION

log = Logger(namespace="jgsl.client")


class State(enum.Enum):
    IDLE = "idle"
    PINGING = "pinging"  # CS_PING sent, waiting for SC_PING_REPLY
    LOGGING_IN = "logging-in"  # gateway answered; waiting for the node under the player
    UPDATING = "updating"  # in a grid node, exchanging updates


TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.PINGING}),
    State.PINGING: frozenset({State.PINGING, State.LOGGING_IN, State.UPDATING, State.IDLE}),
    State.LOGGING_IN: frozenset({State.UPDATING, State.PINGING, State.IDLE}),
    State.UPDATING: frozenset({State.PINGING, State.IDLE}),
}


class EventKind(enum.Enum):
    SIGNED_IN = "signed-in"
    SIGNED_OUT = "signed-out"
    CONNECTION_TIMEOUT = "connection-timeout"
    USER_COME = "user-come"
    USER_MOVE = "user-move"
    USER_LEAVE = "user-leave"
    CREATION = "creation"
    ENV = "env"
    LOG = "log"
    #: The gateway offered the state saved when the user last left the world (adopted).
    RESTORED = "restored"
    #: A grid node (or the gateway) ended the session with SC_Closing.
    CLOSED = "closed"
    #: A game message from a region script (SC_GameMessage); ``message`` holds the payload.
    MESSAGE = "message"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    jid: str = ""
    position: tuple[float, float, float] | None = None
    text: str = ""
    edit: pb.WorldEdit | None = None
    message: Message | None = None


@dataclass
class _PendingEdit:
    env: bool
    edit: pb.WorldEdit
    sent_ct: int | None = None


@dataclass
class ClientSettings:
    #: Seconds between a node's updates. An answer that comes after the interval has passed
    #: brings the next update at once, not at the next tick (flat-out load runs: the node's
    #: flood limit is 20 a second, so an interval of 0.05).
    update_interval: float = 3.0
    #: The longest a request waits for an answer (original ServerTimeOut, which it always
    #: waited). It times out sooner, after a few measured round trips (RFC 6298, at least
    #: ``min_timeout``; jgsl/core/roundtrip.py), doubling per retry up to this.
    request_timeout: float = 20.0
    min_timeout: float = 1.0
    #: Wait exactly request_timeout, measuring nothing (a benchmark that stops its load
    #: generator for seconds at a time).
    adaptive_timeout: bool = True
    #: Timeouts in a row after which a grid node is dead (original MaxTimeOutRetry).
    grid_retries: int = 1
    #: Remote agents not heard of for this long leave (original AgentTimeOut).
    agent_timeout: float = 20.0
    #: Delay before trying again after a refused login.
    retry_delay: float = 5.0
    #: World units from the player to the four corner points, in x and in z, until the
    #: gateway tells the nodes' interest radius (SC_Login_Reply radius), which then counts
    #: (the original's client called this sense_radius and fixed it at 30).
    corner_offset: float = 30.0
    #: Watch neighbouring nodes through the corner points (the original's emulated users
    #: used only the centre).
    corners: bool = True
    #: An agent gone from every node is announced as left after this long (None: 1.5
    #: update intervals + 0.5 s), so one moving between nodes does not flicker.
    leave_grace: float | None = None
    #: Report user-move when an agent moved this far (world units) since its last report;
    #: None: never (a console client wants them, a crowd of bots does not).
    report_moves: float | None = None
    #: Adopt the position the gateway saved at the last visit, at the first sign-in of a
    #: session (appearance and nickname are adopted only where the avatar has none).
    resume: bool = True
    #: Decode the other agents in each reply (False: a load generator's thin client, which
    #: only echoes frames: the server does the same work, the generator far less).
    track_others: bool = True


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
    """Another agent as one node shows it: the wire values of its fields."""

    jid: str
    last_seen: float
    region: Region | None = None
    values: dict[str, object] = field(default_factory=dict)

    def position(self, region: Region | None = None) -> tuple[float, float, float]:
        v = self.values
        x, z = (region or self.region or Region("")).to_world(v.get("rx", 0), v.get("rz", 0))
        return (x, decode_position(v.get("y", 0)), z)

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
    st: int = 0  # the last reply applied (0: we know nothing of this node)
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
    #: "centre" (we are an agent there) or "corner" (we observe it).
    use: str = ""
    #: ``jid`` without a resource: what a reply's sender must be (every reply asks).
    bare_jid: str = field(init=False)

    def __post_init__(self) -> None:
        self.bare_jid = bare(self.jid)


class ClientCore:
    """One player's side of JGSL: the gateway session, the grid nodes around the player and
    the agents they show.

    ``start`` pings the gateway; every ``tick`` runs the neighbour rule (update, observe,
    log in, log out) and the timeouts; ``receive`` applies replies. The session's states are
    L{State} with L{TRANSITIONS}; each node is a L{GridProxy}; what happens goes to
    ``on_event``. Used by real players (jgsl.xmpp.player), emulated users and the load runner.
    """

    def __init__(self, jid: str, gateway: str | Sequence[str], worldpath: str, avatar: Avatar,
                 settings: ClientSettings | None = None, *,
                 on_event: Callable[[Event], None] = lambda e: None,
                 key_factory: Callable[[], str] = new_key,
                 maps: dict[str, StringMap] | None = None) -> None:
        self.jid = jid
        #: The gateways this client may use (they share allocation through Redis): it
        #: starts with one chosen by a hash of its JID, so users spread over them, and moves
        #: to the next when its gateway does not answer or the server bounces it.
        self.gateways = (gateway,) if isinstance(gateway, str) else tuple(gateway)
        if not self.gateways:
            raise ValueError("a client needs a gateway")
        self._gateway_at = zlib.crc32(bare(jid).encode()) % len(self.gateways)
        self.gateway = self.gateways[self._gateway_at]
        self.worldpath = worldpath
        self.avatar = avatar
        self.settings = settings or ClientSettings()
        self.on_event = on_event
        #: Optional measurement hook: metrics(direction, now, message, rtt or None).
        self.metrics: Callable[[str, float, object, float | None], None] | None = None
        self._key_factory = key_factory
        self.maps = maps or default_maps()
        self.state = State.IDLE
        self.csk = key_factory()
        self.sk = ""  # gateway key, once the gateway answered
        #: Known grid nodes by key.
        self.proxies: dict[str, GridProxy] = {}
        self.timeid = 1  # our frame counter ("ct")
        self.own = FieldHistory()
        self._facing = (math.nan, 0)  # (avatar facing, its byte), the last one encoded
        #: Every agent this client sees, by JID (as the node that last updated it shows it).
        self.agents: dict[str, RemoteAgent] = {}
        self._holders: dict[str, set[str]] = {}
        self._announced: set[str] = set()
        self._reported: dict[str, tuple[float, float, float]] = {}
        self._leaving: dict[str, float] = {}
        self._centre: str | None = None  # key of the node we are an agent in
        # Ticks are cheap when nothing is due: when the next step and expiry sweep are due,
        # and where the player was at the last step.
        self._next_step = float("-inf")
        self._next_expiry = float("-inf")
        self._stepped_at: tuple[float, float] | None = None
        self._waiting_since = 0.0
        #: How long to wait for answers (measured round trips; or fixed, never less).
        longest, fixed = self.settings.request_timeout, not self.settings.adaptive_timeout
        self.rtt = RoundTripTimer(minimum=longest if fixed else self.settings.min_timeout,
                                  maximum=longest, initial=longest if fixed else min(3.0, longest))
        self._tries = 0  # unanswered pings or logins in a row (the gateway's backoff)
        #: How far around the player neighbouring nodes are watched: the interest radius
        #: the gateway told (SC_Login_Reply radius), else settings.corner_offset.
        self._corner_offset: float | None = None
        #: The key of the node we last found unreachable, told to the gateway with the next
        #: login so it checks that node's grid process before sending us back there.
        self._unreachable = ""
        self._retry_at: float | None = None
        self._login: tuple[float, float, float] | None = None  # (sent at, x, z)
        self._refused: list[tuple[float, float, float]] = []  # (until, x, z)
        self._edits: list[_PendingEdit] = []
        self._edit_seq = 0
        #: Highest edit sequence number applied per (log, author): replays are not re-applied.
        self._applied: dict[tuple[EventKind, str], int] = {}
        #: Whether this session already considered a saved state (only the first ping
        #: reply's, before the first sign-in).
        self._resumed = False
        #: Node keys that sent SC_Closing, and until when logins to them are not used.
        self._closed: dict[str, float] = {}

    # -- the node we are in ----------------------------------------------------------------

    @property
    def proxy(self) -> GridProxy | None:
        """The grid node the player is in (None between nodes)."""
        return self.proxies.get(self._centre) if self._centre else None

    @proxy.setter
    def proxy(self, proxy: GridProxy | None) -> None:
        self.proxies = {} if proxy is None else {proxy.key: proxy}
        self._centre = None if proxy is None else proxy.key
        if proxy is not None:
            proxy.use = "centre"

    # -- edits -----------------------------------------------------------------------------

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

    # -- state machine ---------------------------------------------------------------------

    def _enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"client {self.jid}: no transition {self.state} -> {state}")
        self.state = state

    def start(self, now: float) -> list[Envelope]:
        self._retry_at = None
        self._enter(State.PINGING)
        self._waiting_since = now
        return [self._to(self.gateway, pb.Ping(csk=self.csk, sk=self.sk,
                                               worldpath=self.worldpath))]

    def stop(self, now: float) -> list[Envelope]:
        """Log out of every grid node and go idle."""
        out = [self._logout(proxy) for proxy in self.proxies.values()]
        for key in list(self.proxies):
            self._drop(now, key, "logged out: stopping")
        self._set_centre(None, "stopped")
        self._login = None
        if self.state is not State.IDLE:
            self._enter(State.IDLE)
            if not out:
                self._signed_out("stopped")
        return out

    def tick(self, now: float) -> list[Envelope]:
        if now >= self._next_expiry:
            # a safety net and the leave grace: four times a second is enough even when
            # updates go out flat out (every tick was ~1.5 µs an update for nothing)
            self._next_expiry = now + min(1.0, max(0.25, self.settings.update_interval))
            self._expire_agents(now)
        if self.state is State.IDLE:
            if self._retry_at is not None and now >= self._retry_at:
                return self.start(now)
            return []
        out: list[Envelope] = []
        waited = now - self._waiting_since
        gateway_timeout = self.rtt.timeout(self._tries)
        if self.state is State.PINGING and waited > gateway_timeout:
            self._emit(Event(EventKind.CONNECTION_TIMEOUT, self.gateway,
                             text="gateway did not answer"))
            self._tries += 1
            self._next_gateway("it did not answer")
            out += self._repin(now)
        if self._login is not None and now - self._login[0] > gateway_timeout:
            self._emit(Event(EventKind.CONNECTION_TIMEOUT, self.gateway,
                             text="gateway did not answer a login"))
            self._login = None
            self._tries += 1
            self._next_gateway("it did not answer a login")
            out += self._repin(now)
        if self._step_due(now):
            out += self._step(now)
        return out

    @property
    def due(self) -> float:
        """When the next tick has something to do (an update or a timeout), unless the
        player moves first."""
        return self._next_step

    def _step_due(self, now: float) -> bool:
        """Is any node due, has the player moved, or is there no node yet?"""
        if now >= self._next_step or self._centre is None or self._stepped_at is None:
            return True
        x, z = self._stepped_at
        return abs(self.avatar.x - x) + abs(self.avatar.z - z) >= 1.0

    def _schedule(self) -> None:
        """When the next step is due: the earliest update or timeout of any node."""
        due = float("inf")
        for proxy in self.proxies.values():
            if proxy.waiting_since is not None:
                wait = self.rtt.timeout(proxy.timeouts) if proxy.timeouts else self.rtt.current
                due = min(due, proxy.waiting_since + wait)
            else:
                due = min(due, proxy.last_sent + self.settings.update_interval)
        self._next_step = due

    def _next_gateway(self, why: str) -> None:
        """Use the next configured gateway (if there is another)."""
        if len(self.gateways) < 2:
            return
        before = self.gateway
        self._gateway_at = (self._gateway_at + 1) % len(self.gateways)
        self.gateway = self.gateways[self._gateway_at]
        self._log(f"gateway {before}: {why}; trying {self.gateway}")

    def _repin(self, now: float) -> list[Envelope]:
        """Ping the gateway again with a new client key (nodes we are in carry on)."""
        self.sk = ""
        self.csk = self._key_factory()
        self._enter(State.PINGING)
        self._waiting_since = now
        return [self._to(self.gateway, pb.Ping(csk=self.csk, worldpath=self.worldpath))]

    @property
    def _reach(self) -> float:
        """How far around the player it watches: the node's interest radius the gateway
        told, else the configured corner offset."""
        return self._corner_offset or self.settings.corner_offset

    def _points(self) -> list[tuple[float, float, bool]]:
        a, r = self.avatar, self._reach
        points = [(a.x, a.z, True)]
        if self.settings.corners:
            points += [(a.x + dx, a.z + dz, False)
                       for dx, dz in ((r, r), (r, -r), (-r, -r), (-r, r))]
        return points

    def _best(self, x: float, z: float) -> GridProxy | None:
        best = None
        for proxy in self.proxies.values():
            if proxy.region.contains(self.worldpath, x, z) and (
                    best is None or proxy.region.smaller_than(best.region)):
                best = proxy
        return best

    def _step(self, now: float) -> list[Envelope]:
        """One round of the neighbour rule: update, observe, log in, log out."""
        if self.state is State.IDLE:
            return []
        out: list[Envelope] = []
        touched: dict[str, str] = {}
        self._refused = [r for r in self._refused if r[0] > now]
        centre = None
        for x, z, is_centre in self._points():
            proxy = self._best(x, z)
            if proxy is None:
                out += self._maybe_login(now, x, z, observer=not is_centre)
                continue
            if is_centre:
                centre = proxy.key
            if proxy.key in touched:
                continue
            use = "centre" if is_centre else "corner"
            touched[proxy.key] = use
            if proxy.use != use:
                proxy.use, proxy.ct = use, 0  # a new role on that node: send everything
            out += self._service(now, proxy)
        if centre not in self.proxies:  # it was found dead while we served it
            centre = None
        self._set_centre(centre, "left the area the gateway serves")
        for key, proxy in list(self.proxies.items()):
            if key not in touched:  # no point of ours is in this node any more
                out.append(self._logout(proxy))
                self._drop(now, key)
        self._stepped_at = (self.avatar.x, self.avatar.z)
        self._schedule()
        return out

    def _service(self, now: float, proxy: GridProxy) -> list[Envelope]:
        """Send this node its update if it is due, minding the one request in flight."""
        if proxy.waiting_since is not None:
            wait = self.rtt.timeout(proxy.timeouts) if proxy.timeouts else self.rtt.current
            if now - proxy.waiting_since <= wait:
                return []
            proxy.timeouts += 1
            if proxy.timeouts > self.settings.grid_retries:
                self._lost(now, proxy, f"grid node {proxy.node_id} is dead")
                return []
            proxy.waiting_since = None  # retry now
        elif now - proxy.last_sent < self.settings.update_interval:
            return []
        if proxy.use == "centre":
            return [self._normal_update(now, proxy)]
        return [self._observer_update(now, proxy)]

    def _maybe_login(self, now: float, x: float, z: float,
                     observer: bool = False) -> list[Envelope]:
        """Ask the gateway which node serves (x, z): one login in flight at a time. A
        corner point's login is an observer's: the gateway does not count us there."""
        if self.state not in (State.LOGGING_IN, State.UPDATING) or self._login is not None:
            return []
        r = self._reach
        if any(abs(x - rx) <= r and abs(z - rz) <= r for _, rx, rz in self._refused):
            return []
        self._login = (now, x, z)
        return [self._to(self.gateway, pb.Login(
            sk=self.sk, csk=self.csk, worldpath=self.worldpath, x=x, y=self.avatar.y, z=z,
            client_version=CLIENT_VERSION, unreachable=self._unreachable,
            is_observer=observer))]

    def _set_centre(self, key: str | None, reason: str) -> None:
        if key == self._centre:
            return
        before, self._centre = self._centre, key
        if key is None:
            self._signed_out(reason)
        elif before is None:
            proxy = self.proxies[key]
            if self.state is State.LOGGING_IN:
                self._enter(State.UPDATING)
            self._emit(Event(EventKind.SIGNED_IN, proxy.jid,
                             text=f"grid node {proxy.node_id} serves {proxy.region}"))

    # -- input -----------------------------------------------------------------------------

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        msg = envelope.message
        if isinstance(msg, pb.NormalUpdateReply):  # nearly every message: asked first
            return self._on_update(now, envelope.sender, msg)
        if isinstance(msg, pb.PingReply):
            return self._on_ping_reply(now, envelope.sender, msg)
        if isinstance(msg, pb.LoginReply):
            return self._on_login_reply(now, envelope.sender, msg)
        if isinstance(msg, pb.Closing):
            return self._on_closing(now, envelope.sender, msg)
        if isinstance(msg, pb.ServerGameMessage):
            return self._on_game_message(envelope.sender, msg)
        if isinstance(msg, Bounce):
            return self._on_bounce(now, envelope.sender, msg)
        self._log(f"ignored {type(msg).__name__} from {envelope.sender}")
        return []

    def _on_bounce(self, now: float, sender: str, msg: Bounce) -> list[Envelope]:
        """The XMPP server could not deliver to a grid process: its nodes are gone for us
        now, not after timeouts; the next step logs in again (naming the node)."""
        if not msg.unreachable:
            self._log(f"{sender} returned an error ({msg.condition})")
            return []
        jid = bare(sender)
        lost = [p for p in self.proxies.values() if p.bare_jid == jid]
        for proxy in lost:
            self._lost(now, proxy, f"grid node {proxy.node_id} is unreachable "
                                   f"({msg.condition})")
        if not lost and jid == bare(self.gateway):
            self._log(f"the gateway {self.gateway} is unreachable ({msg.condition})")
            if len(self.gateways) > 1 and (self.state is State.PINGING
                                           or self._login is not None):
                self._next_gateway("the server says it is not connected")
                self._login = None
                return self._repin(now)  # at once, not after the timeout
        return []

    def _lost(self, now: float, proxy: GridProxy, why: str) -> None:
        self._emit(Event(EventKind.CONNECTION_TIMEOUT, proxy.jid, text=why))
        self._unreachable = proxy.key
        self._drop(now, proxy.key)

    def resend(self, now: float) -> list[Envelope]:
        """Our link to the XMPP server is back: what was in flight was lost with it, so
        send it again now rather than after its timeout."""
        if self.state is State.IDLE:
            return []
        self._login = None  # the next step asks again
        for proxy in self.proxies.values():
            if proxy.waiting_since is not None:
                proxy.waiting_since, proxy.last_sent = None, float("-inf")
        self._next_step = float("-inf")
        if self.state is State.PINGING:
            self._waiting_since = now
            return [self._to(self.gateway, pb.Ping(csk=self.csk, sk=self.sk,
                                                   worldpath=self.worldpath))]
        return self._step(now)

    def _on_ping_reply(self, now: float, sender: str, msg: pb.PingReply) -> list[Envelope]:
        if self.state is not State.PINGING or msg.csk != self.csk or not msg.sk:
            self._log(f"ignored ping reply with an invalid session key from {sender}")
            return []
        if self._tries == 0:
            self.rtt.sample(now - self._waiting_since)
        self._tries = 0
        self.sk = msg.sk
        if msg.HasField("saved") and not self._resumed:
            self._resume(msg.saved)
        self._resumed = True
        self._enter(State.UPDATING if self.proxy is not None else State.LOGGING_IN)
        return self._step(now)

    def _resume(self, saved: pb.SavedAgent) -> None:
        """Adopt the state saved at the last visit (docs/client-states.md, "Resuming")."""
        if saved.worldpath != self.worldpath:
            return
        a = self.avatar
        if self.settings.resume:
            a.x, a.y, a.z = saved.x, saved.y, saved.z
            a.facing = decode_facing(saved.facing)
        if not a.asset_file:
            a.asset_file = saved.asset_file
        if not a.nickname:
            a.nickname = saved.nickname
        self._emit(Event(EventKind.RESTORED, self.gateway, (a.x, a.y, a.z),
                         text=f"last visit at ({saved.x:.2f}, {saved.y:.2f}, {saved.z:.2f})"))

    def _on_login_reply(self, now: float, sender: str, msg: pb.LoginReply) -> list[Envelope]:
        if self._login is None or msg.csk != self.csk:
            self._log(f"ignored login reply from {sender}")
            return []
        self._login, self._tries, self._unreachable = None, 0, ""
        centre = self.avatar
        for_centre = self.proxy is None and abs(msg.x - centre.x) < 1e-6 \
            and abs(msg.z - centre.z) < 1e-6
        if msg.refused or not msg.gk:
            self._log(f"the JGSL server at {sender} refused your login: {msg.reason}")
            if self.state is State.LOGGING_IN and for_centre:
                self._enter(State.IDLE)
                self._retry_at = now + self.settings.retry_delay
                self._signed_out(msg.reason or "refused")
                return []
            self._refused.append((now + self.settings.retry_delay, msg.x, msg.z))
            return []
        if msg.client_version > CLIENT_VERSION or msg.server_version < SERVER_VERSION:
            self._log(f"incompatible server version {msg.server_version} at {sender}")
            for proxy in list(self.proxies):
                self._drop(now, proxy)
            if self.state is not State.IDLE:
                self._enter(State.IDLE)
            self._signed_out("incompatible version")
            return []
        region = Region.from_fields(msg.worldpath, msg.gx, msg.gy,
                                    msg.gsize if msg.HasField("gsize") else None)
        if self._closed.get(msg.gk, float("-inf")) > now:
            self._refused.append((now + self.settings.retry_delay, msg.x, msg.z))
            return []  # that node is closing; the gateway does not know yet
        if msg.HasField("radius") and 0 < msg.radius < 1e6:
            # the node's interest radius: watch neighbouring nodes as far as it sees
            self._corner_offset = msg.radius
        if msg.gk not in self.proxies:
            self.proxies[msg.gk] = GridProxy(msg.gjid, msg.gid, msg.gk, region, msg.role,
                                             ticket=msg.ticket)
            if self._centre is not None:
                self._log(f"new grid node {msg.gid} at {msg.gjid} serves {region}")
        return self._step(now)

    def send_game(self, type_name: str, payload: Message) -> list[Envelope]:
        """A game message (a payload registered in jgsl.wire.game) for the scripts of the
        node the player is in; nothing if the player is between nodes."""
        proxy = self.proxy
        if proxy is None:
            return []
        payload_class(type_name)  # UnknownPayloadError for a type nobody could read
        return [Envelope(self.jid, proxy.jid, pb.GameMessage(
            sk=proxy.key, id=proxy.node_id, type=type_name,
            body=payload.SerializeToString()))]

    def _on_game_message(self, sender: str, msg: pb.ServerGameMessage) -> list[Envelope]:
        proxy = self.proxies.get(msg.sk)
        if proxy is None or bare(sender) != bare(proxy.jid):
            self._log(f"ignored game message with an unknown key from {sender}")
            return []
        try:
            payload = decode_payload(msg.type, msg.body)
        except (UnknownPayloadError, DecodeError):
            self._log(f"ignored game message of unknown or bad type {msg.type!r} from {sender}")
            return []
        text = getattr(payload, "text", "") or getattr(payload, "name", "")
        self._emit(Event(EventKind.MESSAGE, getattr(msg, "from") or proxy.jid, text=text,
                         message=payload))
        return []

    def _on_closing(self, now: float, sender: str, msg: pb.Closing) -> list[Envelope]:
        """The node (or gateway) ends the session: stop sending to it, no timeout."""
        reason = msg.reason or "server closing"
        proxy = self.proxies.get(msg.sk)
        if proxy is not None and bare(sender) == bare(proxy.jid):
            self._closed = {k: t for k, t in self._closed.items() if t > now}
            self._closed[msg.sk] = now + self.settings.retry_delay
            self._emit(Event(EventKind.CLOSED, proxy.jid, text=reason))
            self._drop(now, msg.sk, f"the grid node closed the session ({reason})")
        elif msg.sk and msg.sk == self.sk and bare(sender) == bare(self.gateway):
            self._emit(Event(EventKind.CLOSED, self.gateway, text=reason))
            for key in list(self.proxies):
                self._drop(now, key, f"the gateway closed the session ({reason})")
            self._set_centre(None, reason)
            self._login = None
            if self.state is not State.IDLE:
                self._enter(State.IDLE)
                self._retry_at = now + self.settings.retry_delay
        else:
            self._log(f"ignored SC_Closing with an unknown key from {sender}")
        return []

    def _on_update(self, now: float, sender: str, msg: pb.NormalUpdateReply) -> list[Envelope]:
        proxy = self.proxies.get(msg.sk)
        if proxy is None or (sender != proxy.bare_jid and bare(sender) != proxy.bare_jid):
            self._log(f"ignored update with an unknown key from {sender}")
            return []
        if self.metrics is not None:
            rtt = None if proxy.waiting_since is None else now - proxy.waiting_since
            self.metrics("received", now, msg, rtt)
        if msg.base != proxy.st and not msg.reset:
            return []  # answers an older request (a retry crossed it): deltas do not apply
        if proxy.timeouts == 0 and proxy.waiting_since is not None:
            self.rtt.sample(now - proxy.waiting_since)  # (a retried one is not: Karn)
        proxy.waiting_since, proxy.timeouts = None, 0
        if self.settings.track_others and not self._apply_agents(now, proxy, sender, msg):
            return []
        if msg.creations or msg.env:  # (most replies have none: spare the loop)
            self._apply_edits(msg)
        if self._edits and msg.HasField("ct"):
            # the node has handled every edit we sent up to this ct
            self._edits = [p for p in self._edits if p.sent_ct is None or p.sent_ct > msg.ct]
        proxy.st = msg.st
        proxy.ct = msg.ct if msg.HasField("ct") and not msg.want_full else 0
        if msg.more:
            proxy.last_sent = float("-inf")  # the rest is waiting: ask at the next tick
        self._next_step = min(self._next_step, proxy.last_sent + self.settings.update_interval)
        if not msg.more and now - proxy.last_sent >= self.settings.update_interval:
            # A late answer: this node's next update goes now (the neighbour rule waits for
            # the tick). The rest of a split reply waits for the tick too, so a long edit
            # log cannot make the client outrun a flood limit.
            out = self._service(now, proxy)
            # due again at its timeout, unless the player moves: else the next tick would
            # run the neighbour rule for nothing (every update, flat out)
            self._schedule()
            return out
        return []

    def _apply_edits(self, msg: pb.NormalUpdateReply) -> None:
        """Creations and env messages, each once (resends after a lost reply skipped)."""
        for kind, edits in ((EventKind.CREATION, msg.creations), (EventKind.ENV, msg.env)):
            for edit in edits:
                key = (kind, edit.author)
                if edit.seq and edit.seq <= self._applied.get(key, 0):
                    continue
                self._applied[key] = max(edit.seq, self._applied.get(key, 0))
                self._emit(Event(kind, edit.author, edit=edit))

    def _apply_agents(self, now: float, proxy: GridProxy, sender: str,
                      msg: pb.NormalUpdateReply) -> bool:
        """Update our view of the node's agents; False if the table was unreadable."""
        if msg.reset:
            self._forget(now, proxy, list(proxy.agents))
        try:
            rows = list(read_table(msg.agents, self.maps))
        except TableError as e:
            self._log(f"bad agent table from {sender}: {e}; asking for everything again")
            self._forget(now, proxy, list(proxy.agents))
            proxy.st = 0
            return False
        self._forget(now, proxy, _undelta(msg.gone))
        for row in rows:
            self._apply(now, proxy, row)
        for slot in _undelta(msg.ping):
            agent = proxy.agents.get(slot)
            if agent is not None:
                agent.last_seen = now
        return True

    def _apply(self, now: float, proxy: GridProxy, row) -> None:
        values = row.values
        agent = proxy.agents.get(row.slot)
        if "name" in values:
            jid = agent_jid(values.pop("name"), self.jid)
            if agent is not None and agent.jid != jid:
                self._forget(now, proxy, [row.slot])
                agent = None
            if agent is None:
                agent = proxy.agents[row.slot] = RemoteAgent(jid, now, proxy.region)
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
        jid = agent.jid
        self._holders.setdefault(jid, set()).add(proxy.key)
        self._leaving.pop(jid, None)
        self.agents[jid] = agent
        if jid not in self._announced and agent.intact():
            self._announced.add(jid)
            self._reported[jid] = agent.position()
            self._emit(Event(EventKind.USER_COME, jid, agent.position()))
        elif self.settings.report_moves is not None and jid in self._announced:
            here, last = agent.position(), self._reported.get(jid)
            if last is None or math.dist(here, last) >= self.settings.report_moves:
                self._reported[jid] = here
                self._emit(Event(EventKind.USER_MOVE, jid, here))

    def _forget(self, now: float, proxy: GridProxy, slots) -> None:
        """The node no longer shows these agents; they leave unless another node has them."""
        for slot in slots:
            agent = proxy.agents.pop(slot, None)
            if agent is None:
                continue
            holders = self._holders.get(agent.jid, set())
            holders.discard(proxy.key)
            if holders:
                other = self.proxies[next(iter(holders))]
                self.agents[agent.jid] = next(a for a in other.agents.values()
                                              if a.jid == agent.jid)
            else:
                self._holders.pop(agent.jid, None)
                self._leaving[agent.jid] = now

    def _drop(self, now: float, key: str, reason: str = "grid node lost") -> None:
        proxy = self.proxies.pop(key, None)
        if proxy is not None:
            self._forget(now, proxy, list(proxy.agents))
        if key == self._centre:
            self._set_centre(None, reason)

    # -- helpers ---------------------------------------------------------------------------

    def _own_state(self, proxy: GridProxy) -> dict[str, object]:
        """Our fields as the node sees them (AgentState field -> value)."""
        a = self.avatar
        rx, rz = proxy.region.to_local(a.x, a.z)
        if a.facing != self._facing[0]:  # (walking straight on: the same byte every update)
            self._facing = (a.facing, encode_facing(a.facing))
        state = {"rx": rx, "y": encode_position(a.y), "rz": rz, "facing": self._facing[1]}
        if a.asset_file:
            state["asset_file"] = a.asset_file
        if a.nickname:
            state["nickname"] = a.nickname
        return state

    def _normal_update(self, now: float, proxy: GridProxy) -> Envelope:
        self.timeid += 1
        pushed = self.own.push(self._own_state(proxy), self.timeid)
        # The node echoed our previous frame (nearly always): it lacks just what changed
        # now. Else what changed since the frame it echoed (ct 0: every field).
        changed = pushed if proxy.ct == self.timeid - 1 else self.own.since(proxy.ct)
        # built in one call, the changed fields from a dict: field by field costs twice
        msg = pb.NormalUpdate(sk=proxy.key, id=proxy.node_id, st=proxy.st, ct=self.timeid,
                              agent={"data": changed} if changed else None)
        if self.avatar.dummy:  # (a keyword argument costs a field lookup even when unset)
            msg.dummy = True
        if proxy.recover:
            msg.recover.extend(sorted(set(proxy.recover))[:5])
            proxy.recover.clear()
        if proxy.st == 0 and proxy.ticket is not None:
            msg.ticket.CopyFrom(proxy.ticket)  # the node does not know us yet
        for pending in self._edits[:10] if self._edits else ():
            (msg.agent.env if pending.env else msg.agent.creations).append(pending.edit)
            pending.sent_ct = self.timeid
        proxy.waiting_since = proxy.last_sent = now
        if self.metrics is not None:
            self.metrics("sent", now, msg, None)
        return self._to(proxy.jid, msg)

    def _observer_update(self, now: float, proxy: GridProxy) -> Envelope:
        msg = pb.ObserverUpdate(sk=proxy.key, id=proxy.node_id, st=proxy.st,
                                recover=sorted(set(proxy.recover))[:5],
                                x=self.avatar.x, z=self.avatar.z)
        proxy.recover.clear()
        if proxy.st == 0 and proxy.ticket is not None:
            msg.ticket.CopyFrom(proxy.ticket)
        proxy.waiting_since = proxy.last_sent = now
        if self.metrics is not None:
            self.metrics("sent", now, msg, None)
        return self._to(proxy.jid, msg)

    def _logout(self, proxy: GridProxy) -> Envelope:
        return self._to(proxy.jid, pb.Logout(sk=proxy.key, id=proxy.node_id))

    def _expire_agents(self, now: float) -> None:
        """Agents no node mentioned for agent_timeout are dropped (a safety net: nodes send
        `gone`); agents gone from every node for the grace period leave."""
        for proxy in self.proxies.values():
            self._forget(now, proxy, [slot for slot, agent in proxy.agents.items()
                                      if now - agent.last_seen > self.settings.agent_timeout])
        grace = self.settings.leave_grace
        if grace is None:
            grace = 1.5 * self.settings.update_interval + 0.5
        for jid, since in list(self._leaving.items()):
            if now - since >= grace:
                del self._leaving[jid]
                self.agents.pop(jid, None)
                self._reported.pop(jid, None)
                if jid in self._announced:
                    self._announced.discard(jid)
                    self._emit(Event(EventKind.USER_LEAVE, jid))

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

"""An XEP-0114 component link that feeds a sans-IO core.

The link reconnects with backoff (Twisted's ClientService) whenever the XMPP server or router
goes away; the core keeps ticking meanwhile, and what it sends while the link is down is
dropped with a log line, never queued without bound.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from time import perf_counter

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.words.protocols.jabber import component
from tx_xmpp.subprotocols import StreamManager, XMPPHandler

from jgsl.core.component import AdminAnswer, Core
from jgsl.core.droplog import DropLog, Repeats
from jgsl.core.flood import FloodGate
from jgsl.core.jids import bare
from jgsl.core.reply.agenttable import TableError, read_table
from jgsl.core.safetext import Logger
from jgsl.core.seal import ADMIN, Sealer, SealKeys
from jgsl.core.stringmaps import default_maps
from jgsl.core.tickets import DEV_TICKET_SECRET
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import (
    CodecError,
    Envelope,
    XmppPing,
    XmppPong,
    decode,
    decode_plain,
    encode_bytes,
    presence,
)
from jgsl.wire.messages import describe, readable, type_name, type_of, wire_name
from jgsl.xmpp.stanzas import Stanza, StanzaStream

log = Logger(namespace="jgsl.link")


class MessageDump:
    """Logs every decoded message (--dump-server-msg / --dump-client-msg, or switched on in
    a running process with ``jgsl-admin dump on``), optionally only those to or from one
    ``user`` or of one ``type`` (wire name, e.g. SC_NormalUpdate).

    Each line names our side (for emulated users: the user) and the peer; a reply's agent
    table is written as agents and fields, not as its delta columns."""

    def __init__(self, label: str, user: str | None = None, type_name: str | None = None,
                 maps=None) -> None:
        self._log = Logger(namespace=f"jgsl.dump.{label}")
        self.user = bare(user) if user else None
        self.type_name = type_name
        self._maps = maps

    def __call__(self, direction: str, envelope: Envelope) -> None:
        peer = envelope.sender if direction == "recv" else envelope.recipient
        local = envelope.recipient if direction == "recv" else envelope.sender
        if self.user is not None and self.user not in (bare(peer), bare(local)):
            return
        message = envelope.message
        if self.type_name is not None and wire_name(type(message)) != self.type_name:
            return
        self._log.info("{local}: {direction} {peer} {message}", direction=direction,
                       peer=peer, local=local, message=describe(message) + self._agents(message))

    def _agents(self, message) -> str:
        """A reply's agent table as "slot 3 alice@x: rx=+12 rz=-5 (delta)" rows."""
        if not isinstance(message, pb.NormalUpdateReply | pb.NormalUpdateReplyOut):
            return ""
        try:
            rows = list(read_table(readable(message).agents, self._maps or default_maps()))
        except TableError as e:
            return f" | agent table unreadable: {e}"
        if not rows:
            return ""
        text = []
        for row in rows:
            values = dict(row.values)
            who = values.pop("name", "")
            fields = " ".join(f"{k}={'+' if row.delta and isinstance(v, int) and v >= 0 else ''}"
                              f"{v}" for k, v in values.items())
            text.append(f"slot {row.slot}{' ' + str(who) if who else ''}: {fields}"
                        + (" (delta)" if row.delta else ""))
        return " | agents: " + "; ".join(text)


class CoreHandler(XMPPHandler):
    """Decodes JGSL stanzas for the core and encodes what it returns."""

    def __init__(self, core: Core, clock: IReactorTime,
                 dump: Callable[[str, Envelope], None] | None = None,
                 flood: FloodGate | None = None, store=None, client: bool = False,
                 admins: frozenset[str] = frozenset(),
                 on_admin_shutdown: Callable[[str, str], None] | None = None,
                 reloader=None, sealer: Sealer | None = None) -> None:
        super().__init__()
        self.core = core
        #: Seals what we send of types 200 and up, and refuses such messages without a
        #: right, fresh seal before the core sees them (docs/security.md).
        self.sealer = sealer or Sealer(SealKeys.from_secrets(DEV_TICKET_SECRET))
        #: Bare JIDs whose ADMIN_SHUTDOWN is obeyed; others are dropped with a log line.
        self.admins = frozenset(bare(a) for a in admins)
        self.on_admin_shutdown = on_admin_shutdown
        #: Reloads the scripts (else the core's own ``reload``), for SIGUSR1 / ADMIN_RELOAD.
        self.reloader = reloader
        #: A c2s client: the server stamps `from`; we announce presence when connected.
        self.client = client
        #: Runs the core's store requests (``core.effects``), if it makes any.
        self.store = store
        self.clock = clock
        self.dump = dump
        self.flood = flood if flood is not None else FloodGate()
        self.ready = False
        self._drops = DropLog(log)
        self._failures = Repeats()
        self._next_prune = 0.0
        #: What went through this link, for /metrics: messages received by class; per
        #: class sent, [messages, bytes]; floods dropped; script reloads by outcome.
        self.received: Counter[type] = Counter()
        self.sent: dict[type, list[int]] = {}
        self.flooded = 0
        self.reloads: Counter[str] = Counter()
        #: Given (by the web layer's metrics), called with (message class, seconds) for
        #: every message the core handled: the handling-time histogram. None costs nothing.
        self.timing: Callable[[type, float], None] | None = None

    def connectionInitialized(self) -> None:
        self.ready = True
        transport = getattr(self.xmlstream, "transport", None)
        self._write = transport.write if transport is not None else self.xmlstream.send
        if isinstance(self.xmlstream, StanzaStream):
            self.xmlstream.take_stanzas(self._on_stanza)
        self.xmlstream.addObserver("/message", self._on_message)
        self.xmlstream.addObserver("/iq", self._on_iq)
        if self.client:
            self.send(presence())
            log.info("signed in to the XMPP server as {jid}",
                     jid=self.xmlstream.authenticator.jid.full())
        else:
            log.info("component {jid} is connected", jid=self.xmlstream.thisEntity.full())
        self._run(self.core.connected)

    def connectionLost(self, reason) -> None:
        if self.ready and self.stopping:
            log.info("component link closed: this process is stopping")
        elif self.ready:
            log.warn("component link lost: {reason}", reason=reason.getErrorMessage())
            self._run(self.core.disconnected)  # e.g. the gateway judges no grid meanwhile
        elif not self.stopping:
            self._connection_failed(reason.getErrorMessage())
        self.ready = False

    def _connection_failed(self, why: str) -> None:
        """A connection that closed before the stream was up (e.g. a TLS certificate that
        does not verify): said once, and again every minute while it goes on."""
        if self._failures.due(self.clock.seconds(), why):
            log.error("cannot connect to the XMPP server: {reason}; retrying", reason=why)

    #: Set when this process stops: losing the link is then expected, not a warning.
    stopping = False

    def _on_iq(self, stanza) -> None:
        """XEP-0199 pings are answered here (any XMPP entity does); their answers and
        bounced pings go to the core. Other iqs are not for JGSL."""
        now = self.clock.seconds()
        try:
            envelope = decode(stanza)
        except CodecError as e:
            if stanza.getAttribute("type") in ("get", "set"):
                self._drops.drop(now, "iq from {sender}: {reason}",
                                 sender=stanza.getAttribute("from", "?"), reason=str(e))
            return
        stanza.handled = True
        if not self.flood.allow(now, bare(envelope.sender), bare(envelope.recipient)):
            return
        if isinstance(envelope.message, XmppPing):
            self.send_all(now, [Envelope(envelope.recipient, envelope.sender,
                                         XmppPong(envelope.message.id))])
            return
        self._run(lambda t: self.core.receive(t, envelope))

    def tick(self) -> None:
        now = self.clock.seconds()
        if now >= self._next_prune:
            self.flood.prune(now)
            self._next_prune = now + 10.0
        self._run(self.core.tick)

    def _on_stanza(self, stanza: Stanza) -> bool:
        """The fast path: a plain JGSL message, read with no tree built (else False)."""
        plain = stanza.plain
        if plain is None:
            return False
        now = self.clock.seconds()
        try:
            envelope = decode_plain(plain)
        except CodecError as e:
            self._drops.drop(now, "bad stanza from {sender}: {reason}",
                             sender=plain.attributes.get("from", "?"), reason=str(e))
            return True
        self._receive(now, envelope)
        return True

    def _on_message(self, stanza) -> None:
        now = self.clock.seconds()
        try:
            envelope = decode(stanza)
        except CodecError as e:
            self._drops.drop(now, "bad stanza from {sender}: {reason}",
                             sender=stanza.getAttribute("from", "?"), reason=str(e))
            return
        self._receive(now, envelope)

    def _receive(self, now: float, envelope: Envelope) -> None:
        """A decoded message, by either path: flood gate, dump, seal check, the core."""
        sender, recipient = envelope.sender.split("/")[0], envelope.recipient.split("/")[0]
        if not self.flood.allow(now, sender, recipient):
            self.flooded += 1
            self._drops.drop(now, "flood from {sender} to {recipient}", sender=sender,
                             recipient=recipient)
            return
        cls = type(envelope.message)
        self.received[cls] += 1
        if self.dump:
            self.dump("recv", envelope)
        kind = self.sealer.kind(envelope.message)
        if kind is not None:
            if not self._sealed(now, kind, sender, envelope):
                return
            if kind == ADMIN and self._admin(now, sender, envelope):
                return
        timing = self.timing
        if timing is None:
            self._run(lambda t: self.core.receive(t, envelope))
            return
        started = perf_counter()
        self._run(lambda t: self.core.receive(t, envelope))
        timing(cls, perf_counter() - started)

    def _admin(self, now: float, sender: str, envelope: Envelope) -> bool:
        """Obey a proven admin's ADMIN_SHUTDOWN or ADMIN_RELOAD; False for anything else."""
        if isinstance(envelope.message, pb.AdminShutdown):
            if self.on_admin_shutdown is None:
                self._drops.drop(now, "ADMIN_SHUTDOWN from {sender}: this component cannot "
                                 "shut down on request", sender=sender)
            else:
                self.on_admin_shutdown(sender, envelope.message.reason)
            return True
        if isinstance(envelope.message, pb.AdminReload):
            log.info("script reload requested by {admin}", admin=sender)
            self.reload(reply_to=envelope)
            return True
        if isinstance(envelope.message, pb.AdminCommand):
            self._command(envelope)
            return True
        return False

    def _command(self, envelope: Envelope) -> None:
        """An operator's command: ``dump`` is the link's own, the rest the core's."""
        command = envelope.message
        args = list(command.args)
        log.info("admin {admin} asks: {command}", admin=bare(envelope.sender),
                 command=" ".join([command.command, *args]))

        def step(now: float) -> list[Envelope]:
            if command.command == "dump":
                answer = self._dump_command(args)
            else:
                answer = self.core.admin(now, command.command, args)
            reply = pb.AdminCommandReply(request=command.request, ok=answer.ok,
                                         text=answer.text[:16_000],
                                         json=json.dumps(answer.data or {})[:40_000])
            return [*answer.out, Envelope(envelope.recipient, envelope.sender, reply)]

        self._run(step)

    def _dump_command(self, args: list[str]) -> AdminAnswer:
        """``dump on|off [user=JID] [type=NAME]``: this process's message dump."""
        options = dict(a.split("=", 1) for a in args[1:] if "=" in a)
        if not args or args[0] not in ("on", "off") or set(options) - {"user", "type"} \
                or len(options) != len(args) - 1:
            return AdminAnswer(False, "dump on|off [user=JID] [type=NAME]")
        me = self.xmlstream.thisEntity.full() if self.xmlstream is not None \
            and getattr(self.xmlstream, "thisEntity", None) else "component"
        if args[0] == "off":
            self.dump = None
            log.info("message dump off (an admin asked)")
            return AdminAnswer(True, f"{me}: message dump off")
        self.dump = MessageDump(me, user=options.get("user"), type_name=options.get("type"),
                                maps=getattr(self.core, "maps", None))
        log.info("message dump on (an admin asked){only}",
                 only="".join(f", {k} {v}" for k, v in options.items()))
        return AdminAnswer(True, f"{me}: message dump on"
                           + "".join(f", only {k} {v}" for k, v in options.items()))

    def _sealed(self, now: float, kind: str, sender: str, envelope: Envelope) -> bool:
        """Is this server or admin message proven (and from an admin, if it is one)?"""
        problem = self.sealer.problem(envelope, now)
        if problem is None and kind == ADMIN and sender not in self.admins \
                and not isinstance(envelope.message, pb.AdminReloadReply):
            problem = "the sender is not an admin"
        if problem is not None:
            self._drops.drop(now, "{type} from {sender} refused: {reason}",
                             type=type_name(type_of(envelope.message)), sender=sender,
                             reason=problem)
            return False
        return True

    def republish(self) -> None:
        """The store lost data (a Redis restarted empty): the core writes back what it holds."""
        self._run(self.core.republish)

    def reload(self, reply_to: Envelope | None = None) -> None:
        """Reload the core's scripts (SIGUSR1 or an admin's ADMIN_RELOAD); all or none."""
        reload = self.reloader or self.core.reload

        def step(now: float) -> list[Envelope]:
            errors, count, out = reload(now)
            self.reloads["failed" if errors else "ok"] += 1
            if not errors:
                log.info("scripts reloaded: {count} changed", count=count)
            if reply_to is not None:
                out.append(Envelope(reply_to.recipient, reply_to.sender, pb.AdminReloadReply(
                    ok=not errors, reloaded=count, errors=errors)))
            return out

        self._run(step)

    def _run(self, step: Callable[[float], list[Envelope]]) -> None:
        now = self.clock.seconds()
        try:
            out = step(now)
        except Exception:
            log.failure("core failed; the message was dropped")
            return
        self.send_all(now, out)
        effects = self.core.effects
        if effects and self.store is not None:
            pending, effects[:] = list(effects), []
            for effect in pending:
                self._effect(effect)

    def _effect(self, effect) -> None:
        """Run one store request; its outcome goes back into the core."""
        d = self.store.execute(effect)
        d.addCallbacks(
            lambda outcome: self._run(lambda t: self.core.effect_done(t, effect, outcome)),
            lambda failure: self._run(
                lambda t: self.core.effect_failed(t, effect, failure.getErrorMessage())))

    def send_all(self, now: float, out: list[Envelope]) -> None:
        """Encode and write what the core returned; stanzas go to the transport as bytes
        (the stream's own send would ask twice per stanza whether it is an element)."""
        for envelope in out:
            if not self.ready:
                self._drops.drop(now, "link down, not sent: {type} to {recipient}",
                                 type=type(envelope.message).__name__,
                                 recipient=envelope.recipient)
                continue
            if self.sealer.kind(envelope.message) is not None:
                self.sealer.seal(envelope, now)
            try:
                sender = None if self.client else envelope.sender
                stanza = encode_bytes(envelope.message, envelope.recipient, sender)
            except (CodecError, ValueError) as e:
                log.error("cannot send {type} to {recipient}: {reason}",
                          type=type(envelope.message).__name__, recipient=envelope.recipient,
                          reason=str(e))
                continue
            if self.dump:
                self.dump("send", envelope)
            counts = self.sent.get(type(envelope.message))
            if counts is None:
                counts = self.sent[type(envelope.message)] = [0, 0]
            counts[0] += 1
            counts[1] += len(stanza)
            self._write(stanza)


def no_delay(xs) -> None:
    """Send small stanzas at once: Nagle's algorithm with delayed ACKs adds up to ~40 ms."""
    set_no_delay = getattr(xs.transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        try:
            set_no_delay(True)
        except OSError:
            pass  # not a TCP socket after all


class _Streams(StreamManager):
    def _connected(self, xs) -> None:
        no_delay(xs)
        super()._connected(xs)

    def initializationFailed(self, reason) -> None:
        log.error("XMPP sign-in failed (wrong component secret or password, unknown component "
                  "or account, or TLS not trusted?): {reason}", reason=reason.getErrorMessage())
        if self.xmlstream is not None:
            self.xmlstream.transport.loseConnection()


class ComponentService(Service):
    """One XMPP entity: connects, reconnects with backoff, and ticks its core.

    By default an XEP-0114 component authenticated with ``secret``; given ``factory`` (a
    c2s XMPPClientFactory, see L{jgsl.xmpp.player}) an ordinary client account.
    """

    def __init__(self, reactor, jid: str, secret: str,
                 endpoint: Callable[[], IStreamClientEndpoint | None], core: Core,
                 tick_interval: float = 0.1,
                 dump: Callable[[str, Envelope], None] | None = None, store=None,
                 factory=None, admins: frozenset[str] = frozenset(),
                 on_admin_shutdown: Callable[[str, str], None] | None = None,
                 reloader=None, flood: FloodGate | None = None,
                 sealer: Sealer | None = None) -> None:
        self.reactor = reactor
        self.jid = jid
        self.core = core
        self._endpoint = endpoint
        self._factory = factory or component.componentFactory(jid, secret)
        self._factory.protocol = StanzaStream  # JGSL stanzas read without a tree
        self._factory.noisy = False
        self.streams = _Streams(self._factory, reactor)
        self.handler = CoreHandler(core, reactor, dump, store=store, client=factory is not None,
                                   admins=admins, on_admin_shutdown=on_admin_shutdown,
                                   reloader=reloader, flood=flood, sealer=sealer)
        self.handler.setHandlerParent(self.streams)
        self._tick_interval = tick_interval
        self._ticker = LoopingCall(self.handler.tick)
        self._ticker.clock = reactor
        self._client: ClientService | None = None

    def startService(self) -> None:
        super().startService()
        endpoint = self._endpoint()
        if endpoint is None:
            log.error("component {jid}: no XMPP server to connect to", jid=self.jid)
            return
        self._client = ClientService(endpoint, self._factory, clock=self.reactor,
                                     retryPolicy=backoffPolicy(initialDelay=0.25, maxDelay=5.0))
        self._client.startService()
        self._ticker.start(self._tick_interval, now=False)

    def begin_stop(self) -> None:
        """The first step of stopping: the core's goodbyes (SC_Closing, logouts, saves)."""
        if self._core_stopped:
            return
        self._core_stopped = True
        if self._ticker.running:
            self._ticker.stop()
        self.handler.stopping = True
        self.handler._run(self.core.stop)  # also hands its store requests to the store

    _core_stopped = False

    def stopService(self):
        super().stopService()
        self.begin_stop()
        if self._client is None:
            return None
        xs = self.streams.xmlstream
        if xs is not None and xs.transport is not None:
            xs.sendFooter()  # end the XMPP stream politely; the server then closes its side
        done = self._client.stopService()
        # Some servers (ejabberd over TLS) never close their side: do not wait for ever.
        timer = self.reactor.callLater(self.close_timeout, self._abort, xs)
        return done.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])

    close_timeout = 3.0

    def _abort(self, xs) -> None:
        if xs is not None and xs.transport is not None:
            log.warn("{jid}: the server did not close the connection; aborting it", jid=self.jid)
            xs.transport.abortConnection()

"""The component adapter: decodes for the core, drops bad input, survives core errors."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.words.xish import domish
from tx_xmpp.test.helpers import XmlStreamStub

from jgsl.core.component import Quiet
from jgsl.core.flood import FloodGate
from jgsl.core.seal import Sealer, SealKeys
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope, decode, encode, parse
from jgsl.xmpp.link import CoreHandler
from tests.fakes import Captured


class RecordingCore(Quiet):
    def __init__(self, fail: bool = False) -> None:
        self.received: list[tuple[float, Envelope]] = []
        self.fail = fail

    def connected(self, now):
        return [Envelope("gw.localhost", "grid1.localhost", pb.GridHello())]

    def tick(self, now):
        return []

    def receive(self, now, envelope):
        if self.fail:
            raise ZeroDivisionError("core bug")
        self.received.append((now, envelope))
        return [Envelope("gw.localhost", envelope.sender, pb.PingReply(csk="x"))]


KEYS = SealKeys.from_secrets(b"servers' secret", b"admins' secret")


def connect(core, dump=None, flood=None, **kw):
    clock = Clock()
    clock.advance(42)
    stub = XmlStreamStub()
    stub.xmlstream.thisEntity = type("J", (), {"full": lambda self: "gw.localhost"})()
    handler = CoreHandler(core, clock, dump, flood=flood, sealer=Sealer(KEYS), **kw)
    handler.parent = type("P", (), {"send": lambda self, obj: stub.xmlstream.send(obj)})()
    handler.makeConnection(stub.xmlstream)
    handler.connectionInitialized()
    return handler, stub, clock


def test_connect_sends_what_the_core_announces_sealed():
    handler, stub, clock = connect(RecordingCore())
    (hello,) = stub.output
    envelope = decode(parse(hello))
    assert envelope.message.HasField("seal")
    assert Sealer(KEYS).problem(envelope, clock.seconds()) is None
    envelope.message.ClearField("seal")
    assert envelope.message == pb.GridHello()


def sealed_stanza(message, sender, recipient="gw.localhost", keys=KEYS, now=42.0):
    envelope = Envelope(sender, recipient, message)
    Sealer(keys).seal(envelope, now)
    return parse(encode(message, recipient, sender))


def test_server_messages_without_a_right_seal_never_reach_the_core():
    """A player's account (or anyone without the secret) sending GRID_HELLO registers
    nothing: refused with a rate-limited line naming the sender and the type."""
    core = RecordingCore()
    handler, stub, _ = connect(core)
    forged = sealed_stanza(pb.GridHello(), "mallory@localhost/x",
                           keys=SealKeys.from_secrets(b"guess"))
    with Captured() as events:
        stub.send(parse(encode(pb.GridHello(), "gw.localhost", "mallory@localhost/x")))
        stub.send(forged)
    assert core.received == []
    refusals = [e for e in events if "refused" in e.get("log_format", "")]
    assert [(e["type"], e["sender"], e["reason"]) for e in refusals] == [
        ("GRID_HELLO", "mallory@localhost", "not sealed"),
        ("GRID_HELLO", "mallory@localhost", "bad seal (wrong secret, or altered)")]
    stub.send(sealed_stanza(pb.GridHello(), "grid1.localhost"))
    ((_, envelope),) = core.received
    assert envelope.sender == "grid1.localhost"


def test_a_replayed_server_message_is_refused():
    core = RecordingCore()
    handler, stub, clock = connect(core)
    stanza = sealed_stanza(pb.NodeReady(request=1, id=2, key="k"), "grid1.localhost")
    stub.send(stanza)
    clock.advance(1)
    with Captured() as events:
        stub.send(stanza)
    assert len(core.received) == 1
    assert any(e.get("reason") == "replayed (nonce already seen)" for e in events)


def test_admin_messages_need_an_admin_jid_and_the_admin_seal():
    asked = []
    handler, stub, _ = connect(RecordingCore(), admins=frozenset({"admin.localhost"}),
                               on_admin_shutdown=lambda who, why: asked.append((who, why)))
    shutdown = pb.AdminShutdown(reason="maintenance")
    stub.send(parse(encode(shutdown, "gw.localhost", "admin.localhost")))  # the JID alone
    stub.send(sealed_stanza(shutdown, "mallory.localhost"))  # the secret, not the JID
    server_keys = SealKeys(KEYS.server, KEYS.server)
    stub.send(sealed_stanza(shutdown, "admin.localhost", keys=server_keys))  # a grid's key
    assert asked == []
    stub.send(sealed_stanza(shutdown, "admin.localhost"))
    assert asked == [("admin.localhost", "maintenance")]


def test_message_decoded_with_clock_time_and_reply_sent():
    core = RecordingCore()
    handler, stub, _ = connect(core)
    stub.send(parse(encode(pb.Ping(csk="abc"), "gw.localhost", "alice@emu.localhost/r")))
    ((now, envelope),) = core.received
    assert now == 42 and envelope.message == pb.Ping(csk="abc")
    reply = decode(parse(stub.output[-1]))
    assert reply.recipient == "alice@emu.localhost/r" and reply.message == pb.PingReply(csk="x")


def test_bad_stanzas_are_logged_and_dropped():
    core = RecordingCore()
    handler, stub, _ = connect(core)
    bad = domish.Element((None, "message"))
    bad["from"] = "mallory@evil"
    bad["to"] = "gw.localhost"
    bad.addElement(("urn:xmpp:jgsl:0", "jgsl"))["t"] = "77"
    with Captured() as events:
        for _ in range(50):
            stub.send(bad)
    assert core.received == [] and len(stub.output) == 1
    warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
    assert 1 <= len(warnings) <= 10  # rate-limited
    assert "unknown message type 77" in warnings[0]["reason"]


def test_core_exception_does_not_escape():
    handler, stub, _ = connect(RecordingCore(fail=True))
    with Captured() as events:
        stub.send(parse(encode(pb.Ping(), "gw.localhost", "alice@emu.localhost")))
    assert any(e.get("log_failure") is not None for e in events)
    assert len(stub.output) == 1  # nothing sent


def test_nothing_sent_while_link_down():
    handler, stub, clock = connect(RecordingCore())
    handler.connectionLost(type("R", (), {"getErrorMessage": lambda self: "gone"})())
    handler.send_all(clock.seconds(), [Envelope("gw.localhost", "x@y", pb.Ping())])
    assert len(stub.output) == 1


def test_a_link_lost_while_stopping_is_no_warning(logged):
    gone = type("R", (), {"getErrorMessage": lambda self: "gone"})()
    handler, _, _ = connect(RecordingCore())
    handler.connectionLost(gone)
    assert "component link lost: gone" in logged.text()
    handler, _, _ = connect(RecordingCore())
    handler.stopping = True
    handler.connectionLost(gone)
    assert logged.text().count("component link lost") == 1
    assert "component link closed: this process is stopping" in logged.text()


def test_dump_sees_both_directions():
    seen = []
    handler, stub, _ = connect(RecordingCore(), dump=lambda d, e: seen.append(
        (d, type(e.message).__name__)))
    stub.send(parse(encode(pb.Ping(), "gw.localhost", "alice@emu.localhost")))
    assert seen == [("send", "GridHello"), ("recv", "Ping"), ("send", "PingReply")]


def test_flood_from_one_sender_is_dropped_and_refills():
    core = RecordingCore()
    handler, stub, clock = connect(core)
    ping = parse(encode(pb.Ping(), "gw.localhost", "mallory@evil/r"))
    with Captured() as events:
        for _ in range(100):
            stub.send(ping)
    assert len(core.received) == 40  # the burst
    assert any("flood from" in e.get("log_format", "") for e in events)
    # Another conversation is not affected.
    stub.send(parse(encode(pb.Ping(), "gw.localhost", "alice@emu.localhost")))
    assert len(core.received) == 41
    clock.advance(1.0)  # 20 tokens a second
    for _ in range(30):
        stub.send(ping)
    assert len(core.received) == 61


def test_a_flood_gate_of_its_own_is_used():
    """A link given its own gate (the benchmark echo's, which must not throttle) keeps it,
    although a new gate is empty (and so falsy)."""
    core = RecordingCore()
    handler, stub, _ = connect(core, flood=FloodGate(rate=1e9, burst=1e9))
    ping = parse(encode(pb.Ping(), "gw.localhost", "s1@drive.localhost"))
    for _ in range(100):
        stub.send(ping)
    assert len(core.received) == 100


def test_stopping_a_gateway_service_refuses_new_logins():
    from twisted.internet.testing import MemoryReactorClock

    from jgsl.core.gateway import GatewayCore
    from jgsl.core.rules import CATCH_ALL
    from jgsl.xmpp.link import ComponentService

    core = GatewayCore("gw.localhost", CATCH_ALL)
    service = ComponentService(MemoryReactorClock(), "gw.localhost", "s", lambda: None, core)
    service.startService()
    service.stopService()
    (reply,) = core.receive(0, Envelope("a@x", "gw.localhost", pb.Login(worldpath="w/")))
    assert reply.message.refused and reply.message.reason == "shutting down"


def test_stop_ends_the_stream_and_aborts_a_server_that_never_closes():
    """ejabberd over TLS never closed its side: stopping must still finish."""
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    from jgsl.core.gateway import GatewayCore
    from jgsl.core.rules import CATCH_ALL
    from jgsl.xmpp.link import ComponentService

    reactor = MemoryReactorClock()
    from twisted.internet.endpoints import TCP4ClientEndpoint

    service = ComponentService(reactor, "gw.localhost", "s",
                               lambda: TCP4ClientEndpoint(reactor, "127.0.0.1", 5347),
                               GatewayCore("gw.localhost", CATCH_ALL))
    service.startService()
    factory = reactor.tcpClients[0][2]
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    aborted = []
    transport.abortConnection = lambda: aborted.append(True)
    protocol.makeConnection(transport)
    stopping = service.stopService()
    assert transport.value().endswith(b"</stream:stream>")  # the polite end
    assert not stopping.called and not aborted
    reactor.advance(service.close_timeout)
    assert aborted == [True]
    protocol.connectionLost(None)  # what the abort leads to
    assert stopping.called

"""The embedded router over real TCP, as raw components see it: it forwards the bytes it
received, refuses a ``from`` outside the sender's domain, still routes what needs the full
way, and a malformed stream closes only itself."""

from __future__ import annotations

import hashlib
import re
import socket
import time

import pytest

from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import encode
from tests.processes import Processes, wait_for

HEADER = ("<stream:stream xmlns='jabber:component:accept' "
          "xmlns:stream='http://etherx.jabber.org/streams' to='{jid}'>")


class RawComponent:
    """A component written with a socket and nothing else: what arrives is bytes."""

    def __init__(self, port: int, jid: str, secret: str) -> None:
        self.jid = jid
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(HEADER.format(jid=jid).encode())
        self.received = b""
        stream_id = self.wait_for(rb"id=['\"]([^'\"]+)['\"]").group(1)
        digest = hashlib.sha1(stream_id + secret.encode()).hexdigest()
        self.sock.sendall(f"<handshake>{digest}</handshake>".encode())
        self.wait_for(rb"<handshake\s*/>")
        self.received = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def wait_for(self, pattern: bytes, timeout: float = 10.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.received, re.S)
            if found:
                return found
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"{self.jid} never received {pattern!r}; got "
                                     f"{self.received!r}") from None
            if not data:
                raise ConnectionError(f"{self.jid}: the router closed the stream")
            self.received += data

    def closed(self, timeout: float = 10.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while data := self.sock.recv(65536):
                self.received += data
        except (TimeoutError, ConnectionResetError):
            return False
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def router(procs: Processes, tmp_path):
    port_file = tmp_path / "router.port"
    procs.start("router", "--role", "router", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file))
    port = int(wait_for(lambda: port_file.exists() and port_file.read_text().strip(),
                        what="the router's port"))
    components: list[RawComponent] = []

    def connect(jid: str) -> RawComponent:
        component = RawComponent(port, jid, procs.env["JGSL_COMPONENT_SECRET"])
        components.append(component)
        return component

    yield connect
    for component in components:
        component.close()
    procs.stop_all_cleanly()


def test_stanzas_arrive_as_the_bytes_that_were_sent(router):
    a, b = router("a.localhost"), router("b.localhost")
    sent = [encode(pb.Ping(csk="k"), "bob@b.localhost/r", "a.localhost").encode(),
            b"<iq type='get' id='x>y' to='b.localhost' from='a.localhost'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>",
            b"<message to=\"b.localhost\" from=\"alice@a.localhost/it's\"><body>1 &lt; 2"
            b"<![CDATA[ & <3 ]]></body></message >"]
    a.send(b" ".join(sent))
    b.wait_for(re.escape(b"".join(sent)))


def test_a_stanza_with_prefixes_goes_the_full_way_and_means_the_same(router):
    a, b = router("a.localhost"), router("b.localhost")
    a.send("<message to='b.localhost' from='a.localhost'><x:y xmlns:x='urn:x' x:z='1'/>"
           "</message>")
    found = b.wait_for(rb"<message[^>]*>.*</message>")
    assert b"urn:x" in found.group(0) and b"z=" in found.group(0)


def test_a_from_outside_the_senders_domain_is_refused(router, procs):
    a, b, mallory = router("a.localhost"), router("b.localhost"), router("m.localhost")
    forged = [encode(pb.GridHello(), "b.localhost", "a.localhost").encode(),
              encode(pb.GridHello(), "b.localhost", "x@a.localhost/r").encode(),
              b"<message to='b.localhost'><body>no from</body></message>",
              b"<message to='b.localhost' from='A.LOCALHOST'><body>case</body></message>"]
    for stanza in forged:
        mallory.send(stanza)
    assert mallory.wait_for(rb"not-allowed")
    a.send("<message to='b.localhost' from='a.localhost'><body>real</body></message>")
    b.wait_for(rb"<body>real</body>")
    assert b"GridHello" not in b.received and b"no from" not in b.received
    assert b.received.count(b"<message") == 1
    wait_for(lambda: "refused a stanza from m.localhost" in procs.log("router"),
             what="the refusal logged")
    # a from in the sender's domain written differently is normalised, not refused
    a.send(b"<message to='b.localhost' from='A.Localhost'><body>case</body></message>")
    b.wait_for(rb"<body>case</body>")


def test_no_route_bounces_service_unavailable(router):
    a = router("a.localhost")
    a.send(encode(pb.Ping(csk="k"), "grid9.localhost", "a.localhost"))
    a.wait_for(rb"type=['\"]error['\"].*service-unavailable")


def test_a_malformed_stream_closes_only_itself(router, procs):
    a, b, bad = router("a.localhost"), router("b.localhost"), router("bad.localhost")
    bad.send(b"<message to='b.localhost' from='bad.localhost'><a></b></message>")
    assert bad.closed()
    wait_for(lambda: "closed a component stream: mismatched tag" in procs.log("router"),
             what="one line saying why")
    a.send(b"<message to='b.localhost' from='a.localhost'><body>still here</body></message>")
    b.wait_for(rb"still here")

"""The router's own limit, for benchmarks: a null echo and a driver shaped like JGSL clients.

The driver hosts N senders; each sends one stanza of a given size (a chat body, or a JGSL
message: a CS_GameMessage padded to the size, so that the stanza has JGSL's shape, a
namespaced ``<jgsl/>`` child with a base64 protobuf in it, and both ends parse and serialize
a protobuf as JGSL's do), waits for it to come back from the echo component, and sends the
next at once (unpaced: the router's own limit, to compare with JGSL flat out) or at its next
tick (paced: one per tick per sender, a ceiling of N / tick stanzas per second): N clients
with one update in flight each, with no game logic anywhere.
"""

from __future__ import annotations

from jgsl.core.component import Quiet
from jgsl.core.jids import bare
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Chat, Envelope

#: What the driver can send: stanzas of either shape.
SHAPES = ("chat", "jgsl")


def jgsl_payload(chars: int) -> pb.GameMessage:
    """A game message whose stanza text (base64) is about ``chars`` characters long."""
    message = pb.GameMessage(sk="echo", id=1, type="echo")
    want = chars * 3 // 4  # serialized bytes
    message.body = b"x" * max(0, want - message.ByteSize() - 3)  # tag and length: 2-3 bytes
    return message


class EchoCore(Quiet):
    """Bounces every chat message and game message back to its sender."""

    def __init__(self, jid: str) -> None:
        self.jid = jid

    def connected(self, now: float) -> list[Envelope]:
        return []

    def tick(self, now: float) -> list[Envelope]:
        return []

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        if isinstance(envelope.message, (Chat, pb.GameMessage)):
            return [Envelope(envelope.recipient, envelope.sender, envelope.message)]
        return []


class DriverCore(Quiet):
    """N senders with one message in flight each; round-trip times recorded."""

    def __init__(self, component: str, echo: str, senders: int, size: int,
                 paced: bool = False, shape: str = "chat") -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
        self.echo = echo
        self.paced = paced
        self.body = Chat("x" * max(1, size)) if shape == "chat" else jgsl_payload(size)
        self.senders = [f"s{i}@{component}" for i in range(senders)]
        self.sent_at: dict[str, float | None] = dict.fromkeys(self.senders)
        self.rtts: list[tuple[float, float]] = []
        self.running = False

    def connected(self, now: float) -> list[Envelope]:
        self.running = True
        return self.tick(now)

    def tick(self, now: float) -> list[Envelope]:
        if not self.running:
            return []
        out = []
        for sender, sent in self.sent_at.items():
            if sent is None:
                self.sent_at[sender] = now
                out.append(Envelope(sender, self.echo, self.body))
        return out

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        sender = bare(envelope.recipient)
        sent = self.sent_at.get(sender)
        if sent is not None:
            self.rtts.append((now, now - sent))
            if self.running and not self.paced:
                self.sent_at[sender] = now
                return [Envelope(sender, self.echo, self.body)]
            self.sent_at[sender] = None  # the next one goes at the next tick
        return []

    def stop(self, now: float) -> list[Envelope]:
        self.running = False
        return []

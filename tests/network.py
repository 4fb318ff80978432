"""An in-memory stand-in for the router: delivers envelopes between sans-IO cores."""

from __future__ import annotations

from jgsl.wire.codec import Envelope, XmppPing, XmppPong, decode, encode, parse


class Network:
    def __init__(self) -> None:
        self.cores: dict[str, object] = {}
        self.delivered: list[Envelope] = []
        self.lost: set[type] = set()

    def add(self, domain: str, core) -> None:
        self.cores[domain] = core

    def deliver(self, now: float, envelopes: list[Envelope]) -> None:
        """Deliver, and deliver what the receivers answer, until nothing is left.

        Each envelope goes through the real codec, so what crosses is what a stanza carries.
        """
        queue = list(envelopes)
        while queue:
            sent = queue.pop(0)
            envelope = decode(parse(encode(sent.message, sent.recipient, sent.sender)))
            if type(envelope.message) in self.lost:
                continue
            self.delivered.append(envelope)
            if isinstance(envelope.message, XmppPing):  # answered by the link, as in the daemon
                queue.append(Envelope(envelope.recipient, envelope.sender,
                                      XmppPong(envelope.message.id)))
                continue
            domain = envelope.recipient.split("/")[0].rpartition("@")[2]
            queue += self.cores[domain].receive(now, envelope)

    def tick(self, now: float) -> None:
        for core in list(self.cores.values()):
            self.deliver(now, core.tick(now))


class Clients:
    """Several client cores behind one component (emu.localhost), as EmuCore holds them."""

    def __init__(self, clients) -> None:
        self.clients = clients

    def receive(self, now, envelope):
        return self.clients[envelope.recipient.split("/")[0]].receive(now, envelope)

    def tick(self, now):
        return [e for c in self.clients.values() for e in c.tick(now)]

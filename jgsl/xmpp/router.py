"""The embedded XEP-0114 router, used when no external XMPP server is configured.

Twisted's Router logs every stanza as XML (about 30% of its throughput), raises on an
unknown destination and trusts a component's ``from``; this one routes quietly, bounces or
drops with a rate-limited log, and refuses a ``from`` outside the sender's domain.

It forwards, not rebuilds: each component stream is read by a L{StanzaStream}, and a
stanza that is self-contained, from the sender's own domain, and addressed to a connected
component is written to that component as the bytes that arrived, with no tree built and
no serialization (L{QuietRouter.forward}). Errors, stanzas with no route, a ``from`` that
is not plainly the sender's, and anything with namespace prefixes go the full way
(L{QuietRouter.route}).
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.words.protocols.jabber import component, error, xmlstream
from twisted.words.protocols.jabber.jid import InvalidFormat, internJID

from jgsl.core.droplog import DropLog
from jgsl.core.safetext import Logger
from jgsl.xmpp.link import no_delay
from jgsl.xmpp.stanzas import Stanza, StanzaStream

log = Logger(namespace="jgsl.router")


def _host(jid: str) -> str:
    """The domain of a JID as written (no normalisation: for an exact-match fast path)."""
    return jid.partition("/")[0].rpartition("@")[2]


class QuietRouter(component.Router):
    def __init__(self, clock) -> None:
        super().__init__()
        self._clock = clock
        self._drops = DropLog(log)

    def addRoute(self, destination, xs) -> None:
        """Route ``destination``'s traffic to ``xs``, and route what ``xs`` sends."""
        self.routes[destination] = xs
        xs.addObserver("/*", self._from_component, 0, destination, xs)
        if isinstance(xs, StanzaStream):
            xs.take_stanzas(lambda stanza: self.forward(stanza, destination, xs))

    def removeRoute(self, destination, xs) -> None:
        xs.removeObserver("/*", self._from_component)
        if isinstance(xs, StanzaStream):
            xs.take_stanzas(None)
        if self.routes.get(destination) is xs:
            del self.routes[destination]

    def forward(self, stanza: Stanza, domain: str, xs: StanzaStream) -> bool:
        """Write ``stanza``'s bytes to its recipient, if nothing needs a closer look."""
        attributes = stanza.attributes
        to, sender = attributes.get("to"), attributes.get("from")
        if not (to and sender and stanza.contained) or _host(sender) != domain \
                or attributes.get("type") == "error":
            return False
        target = self.routes.get(_host(to))
        if target is None or target.transport is None:
            return False
        target.transport.write(xs.bytes_of(stanza))
        return True

    def _from_component(self, domain: str, xs, stanza) -> None:
        """The full way: a stanza ``xs`` (bound to ``domain``) sent that was not forwarded."""
        sender = stanza.getAttribute("from")
        try:
            sender_host = internJID(sender).host if sender else None
        except (InvalidFormat, ValueError):
            sender_host = None
        if sender_host != domain:
            self._drops.drop(self._clock.seconds(),
                             "refused a stanza from {component} claiming to be from {sender}",
                             component=domain, sender=sender)
            if stanza.name in ("message", "iq", "presence") and sender \
                    and stanza.getAttribute("type") not in ("error", "result"):
                xs.send(error.StanzaError(
                    "not-allowed", type="cancel",
                    text=f"this component may only send from {domain}").toResponse(stanza))
            return
        self.route(stanza)

    def route(self, stanza) -> None:
        now = self._clock.seconds()
        try:
            host = internJID(stanza.getAttribute("to", "")).host
        except (InvalidFormat, ValueError):
            self._drops.drop(now, "stanza with a bad recipient {to!r} from {sender}",
                             to=stanza.getAttribute("to"), sender=stanza.getAttribute("from"))
            return
        xs = self.routes.get(host) or self.routes.get(None)
        if xs is not None:
            xs.send(stanza)
            return
        self._drops.drop(now, "no route to {to} (from {sender})", to=stanza.getAttribute("to"),
                         sender=stanza.getAttribute("from"))
        if stanza.getAttribute("type") not in ("error", "result") and stanza.getAttribute("from"):
            bounce = error.StanzaError("service-unavailable", type="cancel").toResponse(stanza)
            sender_host = internJID(bounce["to"]).host
            if sender_host in self.routes:
                self.routes[sender_host].send(bounce)


class _ComponentServerFactory(component.XMPPComponentServerFactory):
    """Twisted's, with our stream reader and one rate-limited line for a bad stream (not a
    traceback: malformed XML from a peer is bad input, not a bug of ours)."""

    protocol = StanzaStream

    def __init__(self, router: QuietRouter, secret: str) -> None:
        super().__init__(router, secret)
        self._drops = router._drops
        self._clock = router._clock

    def onError(self, reason) -> None:
        self._drops.drop(self._clock.seconds(), "closed a component stream: {reason}",
                         reason=reason.getErrorMessage())


class RouterService(Service):
    """Listens for components on a strports endpoint; optionally writes the bound port."""

    def __init__(self, reactor, listen: str, secret: str, port_file: str | None = None) -> None:
        self.reactor = reactor
        self.listen = listen
        self.router = QuietRouter(reactor)
        self.factory = _ComponentServerFactory(self.router, secret)
        self.factory.noisy = False
        self.factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, no_delay)
        self.port_file = Path(port_file) if port_file else None
        self.address: tuple[str, int] | None = None
        self._port = None

    def startService(self) -> None:
        super().startService()
        d: Deferred = serverFromString(self.reactor, self.listen).listen(self.factory)
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port) -> None:
        self._port = port
        host = port.getHost()
        self.address = (host.host, host.port)
        log.info("router listening for components on {host}:{port}", host=host.host,
                 port=host.port)
        if self.port_file is not None:
            tmp = self.port_file.with_suffix(".tmp")
            tmp.write_text(f"{host.port}\n")
            tmp.replace(self.port_file)

    def _failed(self, failure) -> None:
        log.error("router cannot listen on {listen}: {reason}", listen=self.listen,
                  reason=failure.getErrorMessage())
        self.reactor.stop()

    def stopService(self):
        super().stopService()
        if self.port_file is not None:
            self.port_file.unlink(missing_ok=True)
        if self._port is not None:
            return self._port.stopListening()
        return None

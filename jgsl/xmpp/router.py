"""The embedded XEP-0114 router, used when no external XMPP server is configured.

Twisted's Router logs every stanza as XML (about 30% of its throughput) and raises on an
unknown destination; this one routes quietly, and bounces or drops with a rate-limited log.
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

log = Logger(namespace="jgsl.router")


class QuietRouter(component.Router):
    def __init__(self, clock) -> None:
        super().__init__()
        self._clock = clock
        self._drops = DropLog(log)

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


class RouterService(Service):
    """Listens for components on a strports endpoint; optionally writes the bound port."""

    def __init__(self, reactor, listen: str, secret: str, port_file: str | None = None) -> None:
        self.reactor = reactor
        self.listen = listen
        self.router = QuietRouter(reactor)
        self.factory = component.XMPPComponentServerFactory(self.router, secret)
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

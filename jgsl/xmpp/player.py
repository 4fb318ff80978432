"""A real player's connection: an ordinary XMPP account over c2s (SASL, STARTTLS), and the
player's client core as the link drives it."""

from __future__ import annotations

from twisted.internet.ssl import Certificate, optionsForClientTLS, platformTrust
from twisted.words.protocols.jabber import client
from twisted.words.protocols.jabber.jid import JID

from jgsl.core.client import ClientCore, State
from jgsl.core.component import Quiet


def player_factory(jid: str, password: str, ca_pem: bytes | None = None):
    """An XmlStreamFactory that signs ``jid`` in with SASL after STARTTLS.

    The server certificate is checked against ``ca_pem`` (a self-signed development
    certificate, say) or else the platform's trust roots, for the JID's domain.
    """
    account = JID(jid)
    trust = Certificate.loadPEM(ca_pem) if ca_pem else platformTrust()
    tls = optionsForClientTLS(account.host, trustRoot=trust)
    return client.XMPPClientFactory(account, password, configurationForTLS=tls)


class PlayerCore(Quiet):
    """A ClientCore as a link core: start when signed in to the XMPP server."""

    def __init__(self, client: ClientCore) -> None:
        self.client = client

    def connected(self, now: float):
        if self.client.state is State.IDLE:
            return self.client.start(now)
        return self.client.resend(now)  # signed in again after an outage

    def tick(self, now: float):
        return self.client.tick(now)

    def receive(self, now: float, envelope):
        return self.client.receive(now, envelope)

    def stop(self, now: float):
        return self.client.stop(now)

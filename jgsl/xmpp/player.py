"""A real player's connection: an ordinary XMPP account over c2s (SASL, STARTTLS)."""

from __future__ import annotations

from twisted.internet.ssl import Certificate, optionsForClientTLS, platformTrust
from twisted.words.protocols.jabber import client
from twisted.words.protocols.jabber.jid import JID


def player_factory(jid: str, password: str, ca_pem: bytes | None = None):
    """An XmlStreamFactory that signs ``jid`` in with SASL after STARTTLS.

    The server certificate is checked against ``ca_pem`` (a self-signed development
    certificate, say) or else the platform's trust roots, for the JID's domain.
    """
    account = JID(jid)
    trust = Certificate.loadPEM(ca_pem) if ca_pem else platformTrust()
    tls = optionsForClientTLS(account.host, trustRoot=trust)
    return client.XMPPClientFactory(account, password, configurationForTLS=tls)

"""Signed login tickets: the gateway vouches that a user may join a grid node.

The original grid trusted anyone who knew a node's (id, key). Here the gateway's SC_Login_Reply
carries a ticket, an HMAC-SHA256 (truncated to 128 bits) over the user's bare JID, the node id
and key, an expiry time, the gateway's JID and the user's role, keyed with a secret that
gateways and grid processes share. A grid node admits a new agent only with a valid,
unexpired ticket for that user from a gateway it trusts.
"""

from __future__ import annotations

import hashlib
import hmac

from jgsl.wire import jgsl_pb2 as pb

#: Used when no secret is configured (development only; the daemon warns).
DEV_TICKET_SECRET = b"jgsl-dev-ticket-secret"


def _mac(secret: bytes, user: str, node_id: int, node_key: str, expires: float,
         gateway: str, role: str, issued: float) -> bytes:
    text = "\x00".join((user, str(node_id), node_key, f"{expires:.3f}", gateway, role,
                        f"{issued:.3f}"))
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).digest()[:16]


def sign(secret: bytes, user: str, node_id: int, node_key: str, expires: float,
         gateway: str, role: str = "guest", issued: float = 0.0) -> pb.Ticket:
    """A ticket signed at ``issued`` (the gateway's wall clock), valid until ``expires``."""
    expires, issued = round(expires, 3), round(issued, 3)
    return pb.Ticket(user=user, node_id=node_id, node_key=node_key, expires=expires,
                     gateway=gateway, role=role, issued=issued,
                     mac=_mac(secret, user, node_id, node_key, expires, gateway, role, issued))


def ticket_problem(secret: bytes, ticket: pb.Ticket, user: str, node_id: int, node_key: str,
                   now: float, trusted: set[str], skew: float = 0.0) -> str | None:
    """Why ``ticket`` does not let ``user`` join the node, or None if it does. ``skew``:
    how far the grid's clock may be ahead of the gateway's (its expiry is judged so)."""
    if not ticket.mac:
        return "no ticket"
    expected = _mac(secret, ticket.user, ticket.node_id, ticket.node_key, ticket.expires,
                    ticket.gateway, ticket.role, ticket.issued)
    if not hmac.compare_digest(expected, ticket.mac):
        return "forged ticket (bad signature)"
    if ticket.gateway not in trusted:
        return f"ticket from untrusted gateway {ticket.gateway}"
    if ticket.user != user:
        return f"ticket was issued to {ticket.user}"
    if (ticket.node_id, ticket.node_key) != (node_id, node_key):
        return "ticket is for another node"
    if now > ticket.expires + skew:
        return (f"ticket expired {now - ticket.expires:.0f} s ago (by this host's clock; "
                f"more than {skew:g} s apart from the gateway's means NTP is not running)")
    return None


def issued_ahead(ticket: pb.Ticket, now: float) -> float:
    """How far in the future (by our clock) the gateway says it issued the ticket."""
    return ticket.issued - now

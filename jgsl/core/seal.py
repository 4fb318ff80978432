"""Seals: a server-to-server or admin message proves who sent it and that it is fresh.

A JID proves little: on a real XMPP server any player's account can address GRID_HELLO to
the gateway, and the original JGSL believed whoever wrote. Every message of type 200 and up
therefore carries a L{pb.Seal}: an HMAC-SHA256 (cut to 128 bits) over its type, sender,
recipient, the sender's wall-clock time, a random nonce and the message without its seal,
keyed with a secret only the servers (or the admins) hold. A receiver accepts it only when
the MAC is right, the time is within ``max_skew`` of its own clock, and it has not seen the
nonce before, so a recorded stanza cannot be replayed, redirected to another receiver, or
re-used as another type. docs/security.md lists who may send what.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import Message

from jgsl.core.jids import bare
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from jgsl.wire.messages import type_of

#: The two kinds of sealed message: between gateways and grid processes, and an admin's.
SERVER, ADMIN = "server", "admin"

#: Every sealed message class and the key that seals it.
SEALED: dict[type[Message], str] = {
    pb.GridHello: SERVER,
    pb.SpawnNode: SERVER,
    pb.NodeReady: SERVER,
    pb.CloseNode: SERVER,
    pb.GridClosing: SERVER,
    pb.MapRequest: SERVER,
    pb.MapReport: SERVER,
    pb.AdminShutdown: ADMIN,
    pb.AdminReload: ADMIN,
    pb.AdminReloadReply: ADMIN,
    pb.AdminCommand: ADMIN,
    pb.AdminCommandReply: ADMIN,
}

#: Default tolerance between two hosts' clocks, in seconds (docs/deploy.md: NTP keeps
#: hosts within milliseconds; this also covers a stanza's time in queues).
MAX_SKEW = 10.0
#: Most nonces remembered; only sealed (authentic) messages add one, at most one per message.
_MAX_NONCES = 1_000_000


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key of its own for each use of a secret (tickets and seals never share one)."""
    return hmac.new(secret, b"jgsl seal key\x00" + purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class SealKeys:
    """The keys of one process: ``server`` between gateways and grids, ``admin`` for admins."""

    server: bytes
    admin: bytes

    @classmethod
    def from_secrets(cls, server_secret: bytes, admin_secret: bytes | None = None) -> SealKeys:
        return cls(derive_key(server_secret, SERVER),
                   derive_key(admin_secret or server_secret, ADMIN))

    def key(self, kind: str) -> bytes:
        return self.server if kind == SERVER else self.admin


def _mac(key: bytes, type_id: int, sender: str, recipient: str, time: float, nonce: bytes,
         body: bytes) -> bytes:
    head = "\x00".join((str(type_id), bare(sender), bare(recipient), f"{time:.6f}")).encode()
    return hmac.new(key, head + b"\x00" + nonce + b"\x00" + body, hashlib.sha256).digest()[:16]


def _body(message: Message) -> bytes:
    """The message without its seal, as the MAC covers it."""
    seal = pb.Seal()
    seal.CopyFrom(message.seal)
    message.ClearField("seal")
    try:
        return message.SerializeToString(deterministic=True)
    finally:
        message.seal.CopyFrom(seal)


class Sealer:
    """Seals what a process sends and checks what it receives.

    ``peers``: JID patterns (``fnmatch``, e.g. ``grid*.example.org``) whose server messages
    are accepted, besides a right seal; empty accepts any sender holding the secret.
    """

    def __init__(self, keys: SealKeys, *, max_skew: float = MAX_SKEW,
                 peers: Iterable[str] = (),
                 nonce_factory: Callable[[int], bytes] = os.urandom) -> None:
        self.keys = keys
        self.max_skew = max_skew
        self.peers = tuple(p.lower() for p in peers)
        self._nonce_factory = nonce_factory
        #: nonce -> when it can be forgotten (its time has left the window by then).
        self._seen: dict[bytes, float] = {}
        self._next_prune = float("-inf")

    @staticmethod
    def kind(message: object) -> str | None:
        """SERVER or ADMIN for a sealed message type, None for anything else."""
        return SEALED.get(type(message))

    def seal(self, envelope: Envelope, now: float) -> None:
        """Fill in the seal of a message about to be sent (in place)."""
        message = envelope.message
        kind = SEALED[type(message)]
        nonce = self._nonce_factory(12)
        body = _body(message)
        message.seal.time, message.seal.nonce = now, nonce
        message.seal.mac = _mac(self.keys.key(kind), type_of(message), envelope.sender,
                                envelope.recipient, message.seal.time, nonce, body)

    def problem(self, envelope: Envelope, now: float) -> str | None:
        """Why a received sealed message is refused, or None (its nonce is then used up)."""
        message = envelope.message
        kind = SEALED[type(message)]
        seal = message.seal
        if not message.HasField("seal") or not seal.mac:
            return "not sealed"
        expected = _mac(self.keys.key(kind), type_of(message), envelope.sender,
                        envelope.recipient, seal.time, seal.nonce, _body(message))
        if not hmac.compare_digest(expected, seal.mac):
            return "bad seal (wrong secret, or altered)"
        if kind == SERVER and self.peers and not any(
                fnmatch.fnmatchcase(bare(envelope.sender).lower(), p) for p in self.peers):
            return "sender matches no allowed peer pattern"
        if not math.isfinite(seal.time):
            return "sealed at no valid time"
        if seal.time > now + self.max_skew:
            return (f"sealed {seal.time - now:.1f} s in the future: the clocks differ by more "
                    f"than {self.max_skew:g} s (run NTP; docs/deploy.md)")
        if seal.time < now - self.max_skew:
            return f"sealed {now - seal.time:.1f} s ago (a replay, or clocks apart)"
        if seal.nonce in self._seen:
            return "replayed (nonce already seen)"
        self._remember(seal.nonce, seal.time + self.max_skew, now)
        return None

    def _remember(self, nonce: bytes, until: float, now: float) -> None:
        if now >= self._next_prune or len(self._seen) >= _MAX_NONCES:
            self._seen = {n: t for n, t in self._seen.items() if t >= now}
            self._next_prune = now + self.max_skew
        self._seen[nonce] = max(until, now)

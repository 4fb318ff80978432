"""Seals on server-to-server and admin messages: forged, replayed and stale ones are refused."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jgsl.core.seal import SEALED, Sealer, SealKeys
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope, decode, encode, parse
from jgsl.wire.messages import REGISTRY

KEYS = SealKeys.from_secrets(b"server secret", b"admin secret")
GRID, GATEWAY = "grid1.example.org", "gateway.example.org"


def sealer(**kw) -> Sealer:
    counter = itertools.count()
    return Sealer(KEYS, nonce_factory=lambda n: next(counter).to_bytes(n, "big"), **kw)


def sealed(message, sender=GRID, recipient=GATEWAY, now=1000.0, by=None) -> Envelope:
    envelope = Envelope(sender, recipient, message)
    (by or sealer()).seal(envelope, now)
    return crossed(envelope)


def crossed(envelope: Envelope) -> Envelope:
    """As the receiver gets it: through the real codec."""
    return decode(parse(encode(envelope.message, envelope.recipient, envelope.sender)))


def hello() -> pb.GridHello:
    message = pb.GridHello(capacity=3)
    message.nodes.add(key="k").info.worldpath = "w/"
    return message


def test_every_type_from_200_up_is_sealed_and_nothing_below():
    assert {cls for t, cls in REGISTRY.items() if t >= 200} == set(SEALED)
    assert all(t >= 200 for t, cls in REGISTRY.items() if cls in SEALED)


def test_a_sealed_message_is_accepted_once():
    receiver = sealer()
    envelope = sealed(hello())
    assert receiver.problem(envelope, 1000.5) is None
    assert receiver.problem(envelope, 1000.6) == "replayed (nonce already seen)"


def test_an_unsealed_message_is_refused():
    assert sealer().problem(crossed(Envelope(GRID, GATEWAY, hello())), 1000) == "not sealed"


@pytest.mark.parametrize("change", [
    lambda e: Envelope("mallory@example.org", e.recipient, e.message),  # another sender
    lambda e: Envelope(e.sender, "gateway2.example.org", e.message),  # redirected
    lambda e: Envelope(e.sender, e.recipient, _with(e.message, capacity=99)),  # altered
    lambda e: Envelope(e.sender, e.recipient, _with(e.message, time_shift=1.0)),  # re-dated
])
def test_a_changed_message_fails_its_seal(change):
    assert sealer().problem(change(sealed(hello())), 1000) \
        == "bad seal (wrong secret, or altered)"


def _with(message, capacity=None, time_shift=0.0):
    copy = type(message)()
    copy.CopyFrom(message)
    if capacity is not None:
        copy.capacity = capacity
    copy.seal.time += time_shift
    return copy


def test_a_seal_made_with_another_secret_is_refused():
    other = Sealer(SealKeys.from_secrets(b"guessed"))
    assert sealer().problem(sealed(hello(), by=other), 1000) \
        == "bad seal (wrong secret, or altered)"


def test_server_and_admin_keys_are_not_interchangeable():
    """A server's key cannot seal an admin message (and the admin secret is its own)."""
    server_only = Sealer(SealKeys(KEYS.server, KEYS.server))
    envelope = sealed(pb.AdminShutdown(reason="x"), sender="admin.example.org",
                      by=server_only)
    assert sealer().problem(envelope, 1000) == "bad seal (wrong secret, or altered)"
    assert sealer().problem(sealed(pb.AdminShutdown(), sender="admin.example.org"),
                            1000) is None


def test_stale_and_future_seals_are_refused_beyond_the_skew():
    receiver = sealer(max_skew=5.0)
    assert receiver.problem(sealed(hello(), now=1000), 1004.9) is None
    assert "ago" in receiver.problem(sealed(hello(), now=1000), 1005.1)
    problem = receiver.problem(sealed(hello(), now=1000), 994.0)
    assert "in the future" in problem and "clocks" in problem


def test_peer_patterns_limit_who_may_send_server_messages():
    receiver = sealer(peers=("grid*.example.org",))
    assert receiver.problem(sealed(hello()), 1000) is None
    assert receiver.problem(sealed(hello(), sender="gw.example.org"), 1000) \
        == "sender matches no allowed peer pattern"


def test_remembered_nonces_are_forgotten_once_their_time_has_passed():
    receiver, sender = sealer(max_skew=5.0), sealer()
    for i in range(100):
        assert receiver.problem(sealed(hello(), now=1000 + i, by=sender), 1000 + i) is None
    assert len(receiver._seen) <= 12  # about two windows' worth, not all hundred


@given(st.binary(max_size=40), st.floats(allow_nan=True, allow_infinity=True))
def test_a_forged_seal_is_never_accepted(mac, time):
    message = hello()
    message.seal.mac, message.seal.time, message.seal.nonce = mac, time, b"n"
    assert sealer().problem(crossed(Envelope(GRID, GATEWAY, message)), 1000) is not None

"""The embedded router: routes by domain, never raises on bad addresses, bounces unknowns."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.words.xish import domish
from twisted.words.xish.utility import EventDispatcher

from jgsl.xmpp.router import QuietRouter


def stream():
    xs = EventDispatcher()
    xs.sent = []
    xs.send = xs.sent.append
    return xs


def stanza(to=None, sender="a.localhost", kind=None):
    el = domish.Element((None, "message"))
    if to is not None:
        el["to"] = to
    if sender:
        el["from"] = sender
    if kind:
        el["type"] = kind
    return el


def test_routes_by_domain():
    router = QuietRouter(Clock())
    a, b = stream(), stream()
    router.addRoute("a.localhost", a)
    router.addRoute("b.localhost", b)
    msg = stanza("bob@b.localhost/r")
    a.dispatch(msg)
    assert b.sent == [msg] and a.sent == []


def test_unknown_destination_bounces_error_to_sender():
    router = QuietRouter(Clock())
    a = stream()
    router.addRoute("a.localhost", a)
    a.dispatch(stanza("x@nowhere.localhost"))
    (bounce,) = a.sent
    assert bounce["type"] == "error" and bounce["to"] == "a.localhost"
    a.dispatch(stanza("x@nowhere.localhost", kind="error"))
    assert len(a.sent) == 1  # errors are not bounced again


def test_bad_or_missing_recipient_dropped():
    router = QuietRouter(Clock())
    a = stream()
    router.addRoute("a.localhost", a)
    a.dispatch(stanza(None))
    a.dispatch(stanza("@@bad@@"))
    assert a.sent == []

"""Run RedisAllocation against a real Redis: ``python tests/redis_semantics.py PORT``.

Its own process, so the test runner never touches the global reactor. Exits 0 when every
step behaves like MemoryAllocation (tests/test_shared_gateways.py has the same sequence).
"""

import sys

import txredisapi
from twisted.internet import defer, task

from jgsl.core.effects import Claim, NodeRecord, Outcome, Publish, Release
from jgsl.storage.allocation import RedisAllocation


@defer.inlineCallbacks
def main(reactor, port):
    redis = yield txredisapi.Connection("127.0.0.1", int(port), convertNumbers=False)
    store = RedisAllocation(redis)
    record = NodeRecord("grid1", 3, "k", "guest")
    steps = [
        (Claim("t", "gw1", 10), Outcome("gw1", None)),
        (Claim("t", "gw2", 10), Outcome("gw1", None)),
        (Publish("t", "gw2", record), Outcome("gw1", None)),
        (Publish("t", "gw1", record), Outcome("gw1", record)),
        (Release("t", "gw2", NodeRecord("grid9", 1, "x", "guest")), Outcome("gw1", record)),
        (Release("t", "gw2", record), Outcome(None, None)),
        (Claim("t", "gw2", 0.3), Outcome("gw2", None)),
    ]
    for effect, expected in steps:
        got = yield store.execute(effect)
        if got != expected:
            raise SystemExit(f"{effect}: expected {expected}, got {got}")
    yield task.deferLater(reactor, 0.5, lambda: None)  # the unpublished claim lapses
    got = yield store.execute(Claim("t", "gw1", 10))
    if got != Outcome("gw1", None):
        raise SystemExit(f"lapsed claim: got {got}")
    yield redis.disconnect()
    print("redis allocation semantics ok")


if __name__ == "__main__":
    task.react(main, sys.argv[1:])

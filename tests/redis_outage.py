"""Store over a real Redis that is killed and restarted: ``python tests/redis_outage.py DIR``.

Its own process (the test runner never touches the global reactor); it owns its
redis-server (AOF on) in DIR. Exits 0 and prints "outage ok" when nothing was lost.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import txredisapi  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.logger import formatEvent, globalLogPublisher  # noqa: E402

from jgsl.core.effects import AgentRecord  # noqa: E402
from jgsl.storage.redis_store import RedisBackend  # noqa: E402
from jgsl.storage.store import Store  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

WORLD = "worlds/MyWorlds/AlphaWorld/"
USERS = [f"u{i}@emu.localhost" for i in range(300)]


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")


@defer.inlineCallbacks
def wait(reactor, condition, what, timeout=30.0):
    deadline = reactor.seconds() + timeout
    while not condition():
        check(reactor.seconds() < deadline, f"timed out waiting for {what}")
        yield task.deferLater(reactor, 0.05, lambda: None)


@defer.inlineCallbacks
def main(reactor, workdir):
    lines = []
    globalLogPublisher.addObserver(lambda e: lines.append(formatEvent(e)))
    redis = RedisServer(Path(workdir), appendonly=True).start()
    try:
        conn = txredisapi.lazyConnection("127.0.0.1", redis.port, convertNumbers=False)
        store = Store(RedisBackend(conn, reactor, timeout=1.0), reactor)
        small = Store(RedisBackend(conn, reactor, name="small", timeout=1.0), reactor, limit=10)

        # 1. persist and read back
        for i, user in enumerate(USERS):
            store.put_agent(WORLD, user, AgentRecord(x=i, y=1.5, z=-i, nickname=f"n{i}"))
        store.put_key(f"{WORLD}|door.lua", "open", "yes")
        yield store.flush()
        got = yield store.get_agent(WORLD, USERS[7])
        check(got == AgentRecord(x=7, y=1.5, z=-7, nickname="n7"), f"read back {got}")
        check((yield store.get_key(f"{WORLD}|door.lua", "open")) == "yes", "script key")

        # 2. Redis dies (kill -9) mid-run: writes queue, reads fall back
        redis.kill()
        for i, user in enumerate(USERS):
            store.put_agent(WORLD, user, AgentRecord(x=1000 + i, y=2.5, z=i, nickname=f"m{i}"))
        store.put_key(f"{WORLD}|door.lua", "open", "no")
        yield wait(reactor, lambda: store.queue.down, "the queue to notice the outage")
        got = yield store.get_agent(WORLD, USERS[3])  # queued: read-your-writes
        check(got is not None and got.x == 1003, f"queued read {got}")
        got = yield store.get_agent(WORLD, "nobody@emu.localhost")  # falls back, no hang
        check(got is None, "fallback read")
        check(any("cannot read" in line for line in lines), "fallback log line")
        for i in range(20):  # the bounded queue drops, with a line
            small.put_key("s", f"k{i}", "v")
        check(len(small.queue) == 10 and small.queue.dropped == 10, "bound")
        check(any("write queue full (10 writes pending)" in line for line in lines),
              "queue-full log line")

        # 3. Redis comes back: everything queued is flushed
        redis.restart()
        yield store.flush().addTimeout(30, reactor)
        check(any("store reachable again" in line for line in lines), "reconnect line")

        # 4. and survives another kill -9 (AOF): nothing acknowledged lost
        redis.kill()
        redis.restart()
        fresh = yield txredisapi.Connection("127.0.0.1", redis.port, convertNumbers=False)
        stored = yield fresh.hgetall("jgsl:agents:" + WORLD)
        check(len(stored) == len(USERS), f"{len(stored)} agents stored")
        for i, user in enumerate(USERS):
            record = AgentRecord.loads(stored[user])
            check(record.x == 1000 + i and record.nickname == f"m{i}", f"{user}: {record}")
        check((yield fresh.hget("jgsl:keys:" + WORLD + "|door.lua", "open")) == "no", "key")

        # 5. a value that does not decode is reported with its key, not silently dropped
        yield fresh.hset("jgsl:agents:" + WORLD, "bad@emu.localhost", "{not json")
        yield fresh.disconnect()
        check((yield store.get_agent(WORLD, "bad@emu.localhost")) is None, "bad value")
        check(any("undecodable value at agents:" + WORLD + " bad@emu.localhost" in line
                  for line in lines), "bad value log line")
        yield small.flush().addTimeout(30, reactor)
        yield store.close()
        print("outage ok")
    finally:
        redis.stop()


if __name__ == "__main__":
    task.react(main, sys.argv[1:])

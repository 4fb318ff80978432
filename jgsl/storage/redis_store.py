"""The Redis backend (txredisapi): each hash is a Redis hash named ``jgsl:<hash>``.

A batch of writes is one Lua script, so it applies atomically and in order. txredisapi
holds commands while it has no connection, and reconnects on its own; every command here
has a timeout, so a read during an outage falls back instead of hanging, and a write batch
fails back into the write-behind queue, which retries it. The connection's reconnect is
hooked to flush the queue at once. With ``appendonly yes`` Redis writes each command to its
AOF before it answers, so a restart of Redis loses nothing the queue saw acknowledged.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, gatherResults, succeed
from twisted.internet.error import TimeoutError

from jgsl.core.droplog import Repeats
from jgsl.core.safetext import Logger
from jgsl.storage.writebehind import Write

log = Logger(namespace="jgsl.storage")
PREFIX = "jgsl:"

_WRITE = """
for i = 1, #KEYS do
  local op, field = ARGV[3 * i - 2], ARGV[3 * i - 1]
  if op == 'd' then
    redis.call('HDEL', KEYS[i], field)
  else
    redis.call('HSET', KEYS[i], field, ARGV[3 * i])
  end
end
return #KEYS
"""


class RedisBackend:
    def __init__(self, redis, clock, name: str = "redis", timeout: float = 3.0) -> None:
        """``redis``: a txredisapi connection handler (lazyConnection)."""
        self._redis = redis
        self._clock = clock
        self.name = name
        self.timeout = timeout
        self.on_connect = None
        self.on_disconnect = None
        self._refusals = Repeats()
        factory = getattr(redis, "_factory", None)
        if factory is not None:
            # Reconnect quickly once Redis is back (txredisapi backs off up to 10 s), and
            # flush the queue as soon as a connection joins the pool.
            factory.initialDelay, factory.maxDelay = 0.25, 2.0
            add = factory.addConnection

            def added(conn):
                add(conn)
                if self.on_connect is not None:
                    self.on_connect()

            factory.addConnection = added
            build = factory.buildProtocol

            def built(addr):
                protocol = build(addr)
                lost = protocol.connectionLost
                ready = []
                protocol.whenConnected().addCallback(ready.append)

                def connection_lost(reason):
                    if not ready:  # lost before it could be used: say why, not only that
                        self._refused(reason.getErrorMessage())
                    elif self.on_disconnect is not None:  # (before what was in flight fails)
                        self.on_disconnect()
                    return lost(reason)

                protocol.connectionLost = connection_lost
                return protocol

            factory.buildProtocol = built

    def _refused(self, why: str) -> None:
        """A connection closed before it was ready (a TLS certificate that does not
        verify, a wrong password): one line with the reason, again each minute."""
        if self._refusals.due(self._clock.seconds(), why):
            log.error("{store}: connection closed before it was ready: {reason}",
                      store=self.name, reason=why)

    def _timed(self, d: Deferred) -> Deferred:
        def no_answer(failure):
            failure.trap(TimeoutError, CancelledError)
            raise ConnectionError(f"no answer from Redis in {self.timeout:g} s")

        return d.addTimeout(self.timeout, self._clock).addErrback(no_answer)

    def write(self, batch: list[Write]) -> Deferred:
        keys, args = [], []
        for hash_name, field, value in batch:
            keys.append(PREFIX + hash_name)
            args += ["d", field, ""] if value is None else ["s", field, value]
        return self._timed(self._redis.eval(_WRITE, keys, args))

    def read(self, hash_name: str, field: str) -> Deferred:
        return self._timed(self._redis.hget(PREFIX + hash_name, field))

    def read_all(self, hash_name: str) -> Deferred:
        def text(reply):
            out = {}
            for k, v in (reply or {}).items():
                k = k.decode("utf-8", errors="replace") if isinstance(k, bytes) else str(k)
                v = v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
                out[k] = v
            return out

        return self._timed(self._redis.hgetall(PREFIX + hash_name)).addCallback(text)

    def durability(self) -> Deferred:
        """What a restart of this Redis would lose, as warnings (none with AOF on)."""

        def setting(reply) -> str:
            values = list(reply or [])
            value = values[1] if len(values) > 1 else b""
            return value.decode() if isinstance(value, bytes) else str(value)

        def judge(settings) -> list[str]:
            appendonly, save = settings
            if appendonly == "yes":
                return []
            if not save.strip():
                return ["appendonly is off and it takes no snapshots ('save' is empty): a "
                        "restart of Redis loses everything"]
            return [f"appendonly is off: a restart of Redis loses every write since its last "
                    f"snapshot (save '{save}')"]

        d = gatherResults([
            self._timed(self._redis.execute_command("CONFIG", "GET", name)).addCallback(setting)
            for name in ("appendonly", "save")], consumeErrors=True)
        return d.addCallback(judge).addErrback(lambda f: f.value.subFailure
                                               if hasattr(f.value, "subFailure") else f)

    def sync(self) -> Deferred:
        return succeed(None)  # acknowledged writes are in Redis (and its AOF)

    def close(self) -> Deferred:
        return self._redis.disconnect()

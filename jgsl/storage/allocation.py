"""Allocation state shared by several gateways: who spawns a region's node, and the node.

A gateway about to spawn a node first *claims* the region (and overflow instance). Exactly
one claimant wins; it spawns the node and *publishes* its record (grid, id, key, role); the
others wait for the record (or for the grid's heartbeat, which reaches every gateway). A
claim expires if its winner dies before publishing. Records are released when the node dies
or is recycled. With Redis every step is one atomic script, so racing gateways agree.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed

from jgsl.core.effects import (
    Claim,
    Effect,
    Lookup,
    NodeRecord,
    Outcome,
    Publish,
    Release,
    Restore,
)

PREFIX = "jgsl:alloc:"


class MemoryAllocation:
    """The same semantics in one process (several gateway cores in a test, or one gateway)."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._claims: dict[str, tuple[str, float | None]] = {}
        self._records: dict[str, NodeRecord] = {}

    def _owner(self, key: str) -> str | None:
        claim = self._claims.get(key)
        if claim is None:
            return None
        owner, expires = claim
        if expires is not None and self._clock.seconds() >= expires:
            del self._claims[key]
            return None
        return owner

    def execute(self, effect: Effect) -> Deferred:
        key = effect.key
        if isinstance(effect, Claim):
            if self._owner(key) is None:
                self._claims[key] = (effect.owner, self._clock.seconds() + effect.ttl)
        elif isinstance(effect, Publish):
            if self._owner(key) == effect.owner:
                self._claims[key] = (effect.owner, None)
                self._records[key] = effect.record
        elif isinstance(effect, Restore):
            if self._owner(key) in (None, effect.owner) and key not in self._records:
                self._claims[key] = (effect.owner, None)
                self._records[key] = effect.record
        elif isinstance(effect, Release):
            if (effect.record is not None and self._records.get(key) == effect.record) or (
                    effect.record is None and self._owner(key) == effect.owner
                    and key not in self._records):
                self._claims.pop(key, None)
                self._records.pop(key, None)
        return succeed(Outcome(self._owner(key), self._records.get(key)))


_CLAIM = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""
_LOOKUP = """
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""
_PUBLISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
end
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""
_RESTORE = """
local claim = redis.call('GET', KEYS[1])
if (not claim or claim == ARGV[1]) and not redis.call('GET', KEYS[2]) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
end
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""
_RELEASE = """
local record = redis.call('GET', KEYS[2])
if (ARGV[2] ~= '' and record == ARGV[2]) or
   (ARGV[2] == '' and not record and redis.call('GET', KEYS[1]) == ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""


class RedisAllocation:
    """Allocation state in Redis (txredisapi); each step is one atomic Lua script.

    With a ``clock``, a step Redis does not answer within ``timeout`` seconds fails (txredisapi
    holds commands while Redis is down): the gateway then refuses that login with "allocation
    store unavailable" instead of leaving it waiting.
    """

    def __init__(self, redis, clock=None, timeout: float = 3.0) -> None:
        self._redis = redis
        self._clock = clock
        self.timeout = timeout

    def execute(self, effect: Effect) -> Deferred:
        keys = [PREFIX + "claim:" + effect.key, PREFIX + "node:" + effect.key]
        if isinstance(effect, Claim):
            d = self._redis.eval(_CLAIM, keys, [effect.owner, str(int(effect.ttl * 1000))])
        elif isinstance(effect, Lookup):
            d = self._redis.eval(_LOOKUP, keys, [])
        elif isinstance(effect, Publish):
            d = self._redis.eval(_PUBLISH, keys, [effect.owner, effect.record.dumps()])
        elif isinstance(effect, Restore):
            d = self._redis.eval(_RESTORE, keys, [effect.owner, effect.record.dumps()])
        else:
            record = effect.record.dumps() if effect.record is not None else ""
            d = self._redis.eval(_RELEASE, keys, [effect.owner, record])
        if self._clock is not None:
            d.addTimeout(self.timeout, self._clock)
        return d.addCallback(self._outcome)

    @staticmethod
    def _outcome(reply) -> Outcome:
        owner, record = (list(reply) + [None, None])[:2] if reply else (None, None)
        if isinstance(owner, bytes):
            owner = owner.decode("utf-8")
        if isinstance(record, bytes):
            record = record.decode("utf-8")
        return Outcome(owner or None, NodeRecord.loads(record))

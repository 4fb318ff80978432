"""The one storage interface: agent states, node logs and script keys over a backend.

A L{Backend} (L{jgsl.storage.redis_store.RedisBackend} or
L{jgsl.storage.embedded.EmbeddedBackend}) stores string fields in named hashes. L{Store}
puts the typed API on top, shared by both: writes go through the write-behind queue and
return at once; reads return Deferreds, see queued writes first, and fall back to "nothing
stored" (with a log line) when the backend cannot be reached. Stored values that do not
decode are logged with their key and skipped. Cores reach the store through effects
(L{jgsl.storage.records}) that L{Store.execute} runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.task import LoopingCall

from jgsl.core.droplog import DropLog
from jgsl.core.effects import (
    LOG_KINDS,
    AgentRecord,
    BadValueError,
    LoadAgent,
    LoadKey,
    LoadNode,
    NodeLogs,
    SaveAgent,
    SaveEdit,
    SaveKey,
    StoreEffect,
)
from jgsl.core.safetext import Logger
from jgsl.storage.records import AGENTS, KEYS, NODE, dump_edit, load_edit
from jgsl.storage.writebehind import Write, WriteBehind

log = Logger(namespace="jgsl.storage")


class Backend(Protocol):
    """Where the strings live. Both implementations keep these semantics."""

    #: For log lines ("redis 127.0.0.1:6379", "embedded state/world.json").
    name: str
    #: Set by the Store: called when the backend (re)connects, to flush queued writes.
    on_connect: Callable[[], None] | None
    #: Set by the Store: called when a live connection is lost (backends that cannot tell
    #: need not call it).
    on_disconnect: Callable[[], None] | None

    def write(self, batch: list[Write]) -> Deferred:
        """Apply every write of the batch (atomically where the backend can)."""

    def read(self, hash_name: str, field: str) -> Deferred:
        """The field's value, or None."""

    def read_all(self, hash_name: str) -> Deferred:
        """Every field of the hash as a dict."""

    def sync(self) -> Deferred:
        """Make every acknowledged write durable (the embedded backend snapshots)."""

    def close(self) -> Deferred: ...


#: The hash of marks: each process's newest acknowledged write batch, by process name.
EPOCH = "epoch"


class Store:
    """Typed storage over a backend, with a write-behind queue.

    Every write batch also writes this process's *mark* (a counter, ``epoch`` hash). When
    the backend reconnects, the mark is read back: one lower than the last acknowledged
    means the store lost writes (a Redis restarted empty, or from an old snapshot); the
    script keys this process wrote are written again and ``on_lost`` listeners (the
    components) re-publish what they hold. L{watch} also writes the mark every few seconds,
    so a process that rarely writes still notices.
    """

    def __init__(self, backend: Backend, clock, *, limit: int = 100_000,
                 batch: int = 500, name: str = "jgsl") -> None:
        self.backend = backend
        self.clock = clock
        self.name = name
        self.queue = WriteBehind(self._write, clock, limit=limit, batch=batch,
                                 name=backend.name)
        backend.on_connect = self._connected
        backend.on_disconnect = self._disconnected
        #: Called when the store is found to have lost writes: re-publish what you hold.
        self.on_lost: list[Callable[[], None]] = []
        self._mark = 0
        self._acknowledged = 0
        #: Writes waiting while the mark is checked after a reconnect (None: not checking).
        self._held: list[Deferred] | None = None
        #: The backend said its connection was lost, and has not reconnected since.
        self._down = False
        #: A reconnect came while the mark was being checked: check once more after.
        self._check_again = False
        #: Script keys this process wrote (small, few): written again after a loss.
        self._keys: dict[tuple[str, str], str] = {}
        self._read_failures = DropLog(log, burst=1, window=30.0, prefix="")
        self._heartbeat = None

    def watch(self, interval: float = 5.0) -> None:
        """Check the backend's durability settings now (a warning if a restart would lose
        data), and write the mark every ``interval`` seconds."""
        durability = getattr(self.backend, "durability", None)
        if durability is not None:
            durability().addCallbacks(self._durability, lambda f: log.warn(
                "{store}: could not check its persistence settings ({reason})",
                store=self.backend.name, reason=f.getErrorMessage()))
        self._heartbeat = LoopingCall(self.queue.put, EPOCH, self.name, "0")
        self._heartbeat.clock = self.clock
        self._heartbeat.start(interval, now=True)

    def _durability(self, problems: list[str]) -> None:
        for problem in problems:
            log.warn("{store}: {problem} (docs/persistence.md: turn on appendonly)",
                     store=self.backend.name, problem=problem)

    def _write(self, batch: list[Write]) -> Deferred:
        self._mark += 1
        mark = self._mark

        def acknowledged(result):
            self._acknowledged = max(self._acknowledged, mark)
            return result

        def send(_=None) -> Deferred:
            return self.backend.write(batch + [(EPOCH, self.name, str(mark))]).addCallback(
                acknowledged)

        if self._down:  # (not handed to the client library, which would send it first)
            return fail(ConnectionError(f"{self.backend.name}: not connected"))
        if self._held is not None:  # the mark is being checked: this batch would hide it
            waiting: Deferred = Deferred()
            self._held.append(waiting)
            return waiting.addCallback(send)
        return send()

    def _disconnected(self) -> None:
        """The backend lost its connection: writes fail at once until the reconnect's
        check (the queue keeps and retries them, as in any outage). One handed to the
        client library meanwhile would go out on the new connection before the mark is
        read, and its new mark made a store that came back empty look whole (seen in CI)."""
        self._down = True

    def _connected(self) -> None:
        """The backend (re)connected: did it keep what it had? Then flush what is queued.

        Writes wait until the mark is read: a batch carries a new mark, and written first
        (a retry, or the queue woken by this reconnect) it made a store that came back
        empty look whole (seen under load in CI)."""
        self._down = False
        if self._held is not None:
            # A check is under way, perhaps on the connection that just died: check again
            # when it ends (else a store that came back empty meanwhile went unnoticed).
            self._check_again = True
            return
        if not self._acknowledged:  # nothing to check
            self.queue.wake()
            return
        self._check([])

    def _check(self, held: list[Deferred]) -> None:
        """Read our mark back and compare; the writes in ``held`` wait until then."""
        self._held = held
        expected = self._acknowledged

        def compare(value) -> None:
            value = _text(value)
            stored = int(value) if value and value.isdigit() else 0
            if stored < expected:
                self._check_again = False  # (the loss is being handled: once is enough)
                self._lost(stored, expected)
            release()

        def release(_=None) -> None:
            waiting, self._held = self._held or [], None
            if self._check_again:  # reconnected meanwhile: the store may be another one
                self._check_again = False
                self._check(waiting)
                return
            for write in waiting:
                write.callback(None)
            self.queue.wake()

        self.backend.read(EPOCH, self.name).addCallbacks(compare, release)

    def _lost(self, stored: int, expected: int) -> None:
        log.warn("{store} came back without writes it had acknowledged (it holds write "
                 "batch {stored} of ours, we had {expected}): it restarted empty or from an "
                 "old snapshot. Re-publishing what this process holds ({keys} script keys, "
                 "and the components' live state)", store=self.backend.name, stored=stored,
                 expected=expected, keys=len(self._keys))
        for (hash_name, field), value in self._keys.items():
            self.queue.put(hash_name, field, value)
        for listener in list(self.on_lost):
            listener()

    # -- agents ------------------------------------------------------------------------

    def put_agent(self, worldpath: str, user: str, record: AgentRecord) -> None:
        self.queue.put(AGENTS + worldpath, user, record.dumps())

    def get_agent(self, worldpath: str, user: str) -> Deferred:
        """The AgentRecord saved for ``user`` in the world, or None."""
        hash_name = AGENTS + worldpath

        def decode(text):
            if text is None:
                return None
            try:
                return AgentRecord.loads(text)
            except BadValueError as e:
                self._bad(hash_name, user, e)
                return None

        return self._read(hash_name, user).addCallback(decode)

    # -- node logs ---------------------------------------------------------------------

    def put_edit(self, node: str, kind: str, seq: int, edit) -> None:
        """Queue one log entry (None deletes it, after compaction)."""
        self.queue.put(f"{NODE}{node}:{kind}", str(seq),
                       None if edit is None else dump_edit(edit))

    def get_node_logs(self, node: str) -> Deferred:
        """NodeLogs of the node; fails if the backend cannot be reached."""
        logs = NodeLogs()

        def read(kind):
            hash_name = f"{NODE}{node}:{kind}"
            d = self.backend.read_all(hash_name)

            def decode(stored):
                entries = getattr(logs, kind)
                for field, text in self.queue.overlay(hash_name, stored).items():
                    try:
                        entries.append((int(field), load_edit(text)))
                    except (BadValueError, ValueError) as e:
                        self._bad(hash_name, field, e)
                entries.sort(key=lambda entry: entry[0])

            return d.addCallback(decode)

        d = gatherResults([read(kind) for kind in LOG_KINDS], consumeErrors=True)
        return d.addCallbacks(lambda _: logs, lambda f: f.value.subFailure)

    # -- script keys (the Lua outbox) --------------------------------------------------

    def put_key(self, scope: str, key: str, value: str) -> None:
        """Queue a write of a script key; ``scope`` is e.g. "<worldpath>|<script name>"."""
        self._keys[(KEYS + scope, key)] = value
        self.queue.put(KEYS + scope, key, value)

    def get_key(self, scope: str, key: str) -> Deferred:
        """The key's value (str), or None."""
        return self._read(KEYS + scope, key)

    # -- effects from the cores --------------------------------------------------------

    def execute(self, effect) -> Deferred:
        if isinstance(effect, SaveAgent):
            self.put_agent(effect.worldpath, effect.user, effect.record)
            return succeed(None)
        if isinstance(effect, SaveEdit):
            self.put_edit(effect.node, effect.kind, effect.seq, effect.edit)
            return succeed(None)
        if isinstance(effect, LoadAgent):
            return self.get_agent(effect.worldpath, effect.user)
        if isinstance(effect, LoadNode):
            return self.get_node_logs(effect.node)
        if isinstance(effect, SaveKey):
            self.put_key(effect.scope, effect.key, effect.value)
            return succeed(None)
        if isinstance(effect, LoadKey):
            return self.get_key(effect.scope, effect.key)
        raise TypeError(f"not a store effect: {effect!r}")

    # -- lifecycle ---------------------------------------------------------------------

    def flush(self) -> Deferred:
        """Fires when every queued write is written and durable."""
        return self.queue.flush().addCallback(lambda _: self.backend.sync())

    def close(self) -> Deferred:
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        return self.backend.close()

    # -- helpers -----------------------------------------------------------------------

    def _read(self, hash_name: str, field: str) -> Deferred:
        queued, value = self.queue.peek(hash_name, field)
        if queued:
            return succeed(value)

        def fallback(failure):
            self._read_failures.drop(
                self.clock.seconds(), "{store}: cannot read {hash} {field} ({reason}); "
                "answering as if nothing were stored (such failures are logged once in "
                "30 s)", store=self.backend.name, hash=hash_name, field=field,
                reason=failure.getErrorMessage())
            return None

        d = self.backend.read(hash_name, field)
        return d.addCallback(_text).addErrback(fallback)

    def _bad(self, hash_name: str, field: str, error: Exception) -> None:
        log.error("{store}: undecodable value at {hash} {field}: {error}; skipped",
                  store=self.backend.name, hash=hash_name, field=field, error=str(error))


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


class EffectRunner:
    """Routes each core effect to the store that runs it (allocation or persistence)."""

    def __init__(self, allocation=None, store: Store | None = None) -> None:
        self.allocation = allocation
        self.store = store

    def execute(self, effect) -> Deferred:
        if isinstance(effect, StoreEffect):
            if self.store is None:
                return succeed(None)  # nothing persists; loads find nothing
            return self.store.execute(effect)
        if self.allocation is None:
            raise TypeError(f"no allocation store for {effect!r}")
        return self.allocation.execute(effect)

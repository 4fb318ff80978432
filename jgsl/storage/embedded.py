"""The embedded backend: hashes in memory, snapshotted to one JSON file.

For ``--role world`` without Redis. Writes apply to memory at once; a snapshot follows
``interval`` seconds after the first unsaved write, and on ``sync`` (shutdown). A snapshot
is written to a temporary file in the same directory, fsynced, then renamed over the old
one, so a crash leaves either the old or the new file, never half of one. A file that does
not parse is moved aside (``<name>.bad-<time>``) with an error line and the store starts
empty; its data stays on disk for a person to look at.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from twisted.internet.defer import Deferred, fail, succeed

from jgsl.core.safetext import Logger
from jgsl.storage.writebehind import Write

log = Logger(namespace="jgsl.storage")
VERSION = 1


class EmbeddedBackend:
    def __init__(self, path: str | Path, clock, interval: float = 2.0) -> None:
        self.path = Path(path)
        self.name = f"embedded {self.path}"
        self.on_connect = None
        self._clock = clock
        self.interval = interval
        self._timer = None
        self._dirty = False
        self.hashes: dict[str, dict[str, str]] = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise SystemExit(f"cannot read the state file {self.path}: {e.strerror}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError(f"not a version {VERSION} JGSL state file")
            hashes = data["hashes"]
            if not isinstance(hashes, dict) or not all(
                    isinstance(h, dict) and all(isinstance(v, str) for v in h.values())
                    for h in hashes.values()):
                raise ValueError("hashes is not a map of string maps")
        except (ValueError, KeyError) as e:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
            os.replace(self.path, aside)
            log.error("state file {path} does not decode ({error}); moved to {aside}, "
                      "starting empty", path=str(self.path), error=str(e), aside=str(aside))
            return {}
        log.info("state restored from {path}: {fields} fields in {hashes} hashes",
                 path=str(self.path), hashes=len(hashes),
                 fields=sum(len(h) for h in hashes.values()))
        return hashes

    def write(self, batch: list[Write]) -> Deferred:
        for hash_name, field, value in batch:
            if value is None:
                fields = self.hashes.get(hash_name)
                if fields is not None:
                    fields.pop(field, None)
                    if not fields:
                        del self.hashes[hash_name]
            else:
                self.hashes.setdefault(hash_name, {})[field] = value
        self._dirty = True
        if self._timer is None:
            self._timer = self._clock.callLater(self.interval, self._snapshot_later)
        return succeed(None)

    def read(self, hash_name: str, field: str) -> Deferred:
        return succeed(self.hashes.get(hash_name, {}).get(field))

    def read_all(self, hash_name: str) -> Deferred:
        return succeed(dict(self.hashes.get(hash_name, {})))

    def _snapshot_later(self) -> None:
        self._timer = None
        try:
            self.snapshot()
        except OSError as e:
            log.error("cannot write the state file {path}: {error}; retrying",
                      path=str(self.path), error=str(e))
            self._timer = self._clock.callLater(self.interval, self._snapshot_later)

    def snapshot(self) -> None:
        """Write the state file now (temp file, fsync, rename)."""
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.tmp")
        with open(temp, "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "hashes": self.hashes}, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.path)
        self._dirty = False

    def sync(self) -> Deferred:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.snapshot()
        except OSError as e:
            return fail(e)  # the shutdown logs it
        return succeed(None)

    def close(self) -> Deferred:
        return self.sync()

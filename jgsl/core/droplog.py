"""Rate-limited logging of dropped input, so a flood of bad stanzas cannot flood the log."""

from __future__ import annotations

import re
from collections import Counter

from twisted.logger import Logger

#: Every drop in this process, by (logger namespace, reason): what /metrics reports as
#: jgsl_dropped_total. The reason is the message's template with its fields left out, so
#: the labels are as few as the places that drop (never text from the network).
DROPS: Counter[tuple[str, str]] = Counter()
_reasons: dict[str, str] = {}


def reason_of(template: str) -> str:
    """The template of a drop line as a metric label: "bad stanza from {sender}: {reason}"
    is "bad stanza from …: …"."""
    reason = _reasons.get(template)
    if reason is None:
        reason = _reasons[template] = re.sub(r"\{[^{}]*\}", "…", template).strip()[:80]
    return reason


class DropLog:
    """Log at most ``burst`` drops per ``window`` seconds, then one summary of what was hidden."""

    def __init__(self, log: Logger, burst: int = 10, window: float = 10.0,
                 prefix: str = "dropped: ") -> None:
        self._log = log
        self._prefix = prefix
        self._burst = burst
        self._window = window
        self._window_start = float("-inf")
        self._shown = 0
        self._hidden = 0

    def drop(self, now: float, message: str, /, **fields: object) -> None:
        DROPS[(self._log.namespace, reason_of(message))] += 1
        if now - self._window_start >= self._window:
            if self._hidden:
                self._log.warn("{hidden} more such lines were not logged",
                               hidden=self._hidden)
            self._window_start, self._shown, self._hidden = now, 0, 0
        if self._shown < self._burst:
            self._shown += 1
            self._log.warn(self._prefix + message, **fields)
        else:
            self._hidden += 1


class Repeats:
    """Whether to log a failure that repeats (each reconnect attempt, say): when its reason
    changes, and otherwise once per ``window`` seconds while it goes on."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._reason, self._logged = "", float("-inf")

    def due(self, now: float, reason: str) -> bool:
        if reason == self._reason and now - self._logged < self.window:
            return False
        self._reason, self._logged = reason, now
        return True

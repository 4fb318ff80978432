"""ValueTracker: the last few (frame, value) pairs of one field of one agent.

The newest pair says what to send; the older ones let a node code a change as a delta against
the value a client acknowledged (the original kept them only for debugging).
"""

from __future__ import annotations

#: ``ValueTracker.at`` when the history no longer reaches back to the asked frame.
EVICTED = object()


class ValueTracker:
    __slots__ = ("_frames", "_values", "_size", "_evicted", "refreshed", "frame", "value",
                 "earlier_frame", "earlier")

    def __init__(self, size: int = 2) -> None:
        self._frames: list[int] = []
        self._values: list[object] = []
        self._size = max(1, size)
        self._evicted = False
        #: Frame of the last periodic refresh: readers behind it get the value absolute.
        self.refreshed = 0
        #: The newest change: its frame (0 if none) and value (None if none). Plain
        #: attributes, not properties: every row built reads them for every field.
        self.frame = 0
        self.value: object = None
        #: The change before the newest, while the history holds it (else frame None): what
        #: L{at} answers for a frame between the two, the common case, without a search.
        self.earlier_frame: int | None = None
        self.earlier: object = None

    def push(self, frame: int, value: object) -> bool:
        """Record ``value`` at ``frame`` unless it equals the newest value (CheckPush)."""
        if self._values and self.value == value:
            return False
        if self._values and self._size > 1:
            self.earlier_frame, self.earlier = self.frame, self.value
        self._frames.append(frame)
        self._values.append(value)
        self.frame, self.value = frame, value
        if len(self._frames) > self._size:
            del self._frames[0], self._values[0]
            self._evicted = True
        return True

    def at(self, frame: int) -> object:
        """The value as of ``frame``: None if it had none, EVICTED if that is forgotten."""
        for i in range(len(self._frames) - 1, -1, -1):
            if self._frames[i] <= frame:
                return self._values[i]
        return EVICTED if self._evicted else None

    def __len__(self) -> int:
        return len(self._frames)

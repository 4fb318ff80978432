"""The gateway's view of where every agent is, for the live world map (sans-IO).

The map costs the grids nothing while nobody looks: a web page that shows it calls
L{WorldMap.want}, and only then does the gateway ask each grid process for a report, at
most once per ``interval`` however many pages are open (GRID_MAP_REQUEST). A grid answers
in parts (GRID_MAP_REPORT); the latest complete answer of each grid process is what the
map shows, until it is ``keep`` seconds old or the grid process goes away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from jgsl.wire import jgsl_pb2 as pb

#: Parts of one report kept while it is incomplete (a grid that splits more is odd).
MAX_PARTS = 64


@dataclass
class WorldMap:
    interval: float = 1.0
    keep: float = 5.0
    #: Until when someone is looking (L{want}).
    wanted_until: float = float("-inf")
    #: grid process -> (when, its nodes with their agents), complete reports only
    reports: dict[str, tuple[float, list[pb.MapNode]]] = field(default_factory=dict)
    _next: float = float("-inf")
    _requests: count = field(default_factory=lambda: count(1))
    _request: int = 0
    _parts: dict[str, dict[int, pb.MapReport]] = field(default_factory=dict)

    def want(self, now: float, seconds: float = 3.0) -> None:
        """A page shows the map: keep reports coming for ``seconds`` more."""
        self.wanted_until = max(self.wanted_until, now + seconds)

    def due(self, now: float) -> int | None:
        """The id of a request to send every grid process now, or None."""
        if now >= self.wanted_until or now < self._next:
            return None
        self._next = now + self.interval
        self._request = next(self._requests)
        self._parts.clear()
        return self._request

    def report(self, now: float, grid: str, msg: pb.MapReport) -> None:
        """One part of a grid process's answer; the report counts once all parts came."""
        if msg.request != self._request or not 0 <= msg.part < msg.parts <= MAX_PARTS:
            return  # an answer to an older request, or nonsense
        parts = self._parts.setdefault(grid, {})
        parts[msg.part] = msg
        if len(parts) == msg.parts:
            del self._parts[grid]
            self.reports[grid] = (now, [node for _, part in sorted(parts.items())
                                        for node in part.nodes])

    def forget(self, grid: str) -> None:
        self.reports.pop(grid, None)
        self._parts.pop(grid, None)

    def current(self, now: float) -> dict[str, list[pb.MapNode]]:
        """Each grid process's nodes as last reported, if not older than ``keep``."""
        return {grid: nodes for grid, (when, nodes) in self.reports.items()
                if now - when <= self.keep}

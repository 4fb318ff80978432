"""An agent on a grid node: its fields (value trackers stamped with the node's frames), its
mode, and, as a viewer, what each of its replies left it knowing."""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass, field

from jgsl.core.fields import REQUIRED
from jgsl.core.tracker import ValueTracker


class AgentMode(enum.Enum):
    AGENT = 1  # sends normal updates; broadcast to others
    OBSERVER = 2  # watches from a neighbouring region; never broadcast


@dataclass(slots=True)
class Ack:
    """What a client knows once it has a given reply: agents, and how far it read the logs.

    ``agents`` holds (slot, frame) pairs, ascending by slot, flat: for each slot the client
    shows, the frame its agent's state is exact at (a frame before the agent joined means
    the client knew an earlier agent in that slot)."""

    agents: array = field(default_factory=lambda: array("q"))
    creations: int = 0
    env: int = 0


_NO_SLOTS = array("q")
_NO_FLAGS = array("B")
#: What a client knows before its first reply (never changed: replies make new ones).
NO_ACK = Ack()


_REQUIRED = frozenset(REQUIRED)


@dataclass(eq=False)
class Agent:
    jid: str
    slot: int
    mode: AgentMode
    last_active: float
    trackers: dict[str, ValueTracker] = field(default_factory=dict)
    #: As a viewer: reply frame -> what the client knows once it has that reply.
    records: dict[int, Ack] = field(default_factory=dict)
    #: The author sequence number of the last edit applied from this agent.
    edit_seq: int = 0
    #: The role the gateway granted (from the ticket); decides edit rights.
    role: str = "guest"
    #: Node-relative position in hundredths (an observer's is the one it reported).
    pos: tuple[int, int] | None = None
    #: When each refresh rate's fields are next re-sent (rate -> time; set at the first
    #: update).
    refresh_due: dict[int, float] = field(default_factory=dict)
    #: A non-player agent a region script spawned (never times out, never a viewer).
    npc: bool = False

    @property
    def is_agent(self) -> bool:
        return self.mode is AgentMode.AGENT

    def value(self, name: str) -> object:
        tracker = self.trackers.get(name)
        return None if tracker is None else tracker.value

    def intact(self) -> bool:
        return self.trackers.keys() >= _REQUIRED



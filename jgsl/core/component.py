"""What every core is to the component link that drives it: the whole interface.

A core is sans-IO: the link (jgsl.xmpp.link) calls these with the reactor's time and sends
what they return. L{Core} lists every call; L{Quiet} gives the ones a simple core does not
need (nothing to say, nothing to store, no scripts), so a core names only what it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from jgsl.wire.codec import Envelope


@dataclass
class AdminAnswer:
    """What a core answers an operator's command (ADMIN_COMMAND, jgsl-admin): whether it
    was done, a text for people, data for programs, and what to send because of it."""

    ok: bool
    text: str
    data: dict | None = None
    out: list[Envelope] = field(default_factory=list)


class Core(Protocol):
    #: Store and allocation requests for the link to run (jgsl.core.effects); results come
    #: back through L{effect_done} / L{effect_failed}.
    effects: list

    def connected(self, now: float) -> list[Envelope]:
        """The link is up (first time, or again after an outage)."""

    def disconnected(self, now: float) -> list[Envelope]:
        """The link went down; what is sent meanwhile is dropped."""

    def tick(self, now: float) -> list[Envelope]: ...

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]: ...

    def stop(self, now: float) -> list[Envelope]:
        """The process stops gracefully: goodbyes and last saves."""

    def reload(self, now: float) -> tuple[list[str], int, list[Envelope]]:
        """Reload changed scripts, all or none: (errors, how many reloaded, envelopes)."""

    def republish(self, now: float) -> list[Envelope]:
        """The store lost what it held: write back what this core holds."""

    def admin(self, now: float, command: str, args: list[str]) -> AdminAnswer:
        """An operator's command (the link checked the admin's seal and JID)."""

    def effect_done(self, now: float, effect, outcome) -> list[Envelope]: ...

    def effect_failed(self, now: float, effect, reason: str) -> list[Envelope]: ...


class Quiet:
    """The calls of L{Core} a simple core has nothing to do for."""

    #: (Empty and never appended to: a core that makes requests has a list of its own.)
    effects: list = ()  # type: ignore[assignment]

    def disconnected(self, now: float) -> list[Envelope]:
        return []

    def stop(self, now: float) -> list[Envelope]:
        return []

    def reload(self, now: float) -> tuple[list[str], int, list[Envelope]]:
        return ["this component runs no scripts"], 0, []

    def republish(self, now: float) -> list[Envelope]:
        return []

    def admin(self, now: float, command: str, args: list[str]) -> AdminAnswer:
        return AdminAnswer(False, f"{command!r} is not a command this component knows")

    def effect_done(self, now: float, effect, outcome) -> list[Envelope]:
        return []

    def effect_failed(self, now: float, effect, reason: str) -> list[Envelope]:
        return []

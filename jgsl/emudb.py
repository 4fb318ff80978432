"""Emulated users from the original ``EmuUsersDB.xml`` format (2009), read unchanged.

``/EmuDB/EmuUsers/user`` (username, password, worldpath, server, chatdomain, nickname) with a
``<playeragent>`` child (x, y, z, facing, nickname, AssetFile, dummy) and an ``<autoreply>``
child (inline comma-separated sentences or ``textkey`` naming a ``/EmuDB/TextGroup/text``).
New, optional ``<playeragent>`` attributes: ``behaviour`` — ``stand`` (default), ``wander``
(random walk within ``radius`` of the start), ``patrol`` (walk the ``waypoints`` "x z; x z; …"
in a loop) or ``follow`` (keep ``distance`` from the user named in ``follow``) — and ``speed``.
A bad user entry is reported by name and attribute; the other users still load.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from jgsl.config import ConfigError, read_config_file
from jgsl.core.emu import EmuUser
from jgsl.core.fields import valid_coordinate

BEHAVIOURS = ("stand", "wander", "patrol", "follow")
_LOCALPART = re.compile(r"^[^\s@/\\\"'&:<>]{1,64}$")


def _waypoints(text: str, who: str) -> tuple[tuple[float, float], ...]:
    points = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            x, z = (float(v) for v in part.split())
        except ValueError:
            raise ConfigError(f"user {who}: waypoint {part.strip()!r} is not 'x z'") from None
        if not (valid_coordinate(x) and valid_coordinate(z)):
            raise ConfigError(f"user {who}: waypoint {part.strip()!r} is out of range")
        points.append((x, z))
    return tuple(points)


def _sentences(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def _number(node: ET.Element, name: str, who: str, default: float | None = None) -> float:
    raw = node.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(f"user {who}: playeragent has no {name}")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"user {who}: playeragent {name}={raw!r} is not a number") from None
    if not valid_coordinate(value):
        raise ConfigError(f"user {who}: playeragent {name}={raw!r} is out of range")
    return value


def _user(node: ET.Element, texts: dict[str, tuple[str, ...]], index: int) -> EmuUser:
    username = node.get("username", "")
    who = repr(username) if username else f"#{index}"
    if not username:
        raise ConfigError(f"user {who}: no username")
    if not _LOCALPART.match(username):
        raise ConfigError(f"user {who}: username is not a valid JID node part")
    if node.get("password") is None:
        raise ConfigError(f"user {who}: no password")
    agent = node.find("playeragent")
    if agent is None:
        raise ConfigError(f"user {who}: no playeragent")
    reply = node.find("autoreply")
    sentences: tuple[str, ...] = ()
    if reply is not None:
        key = reply.get("textkey")
        if key is not None:
            if key not in texts:
                raise ConfigError(f"user {who}: autoreply textkey={key!r} has no TextGroup text")
            sentences = texts[key]
        else:
            sentences = _sentences(reply.text)
    behaviour = agent.get("behaviour", "stand")
    if behaviour not in BEHAVIOURS:
        raise ConfigError(f"user {who}: playeragent behaviour={behaviour!r} is not one of "
                          + ", ".join(BEHAVIOURS))
    waypoints = _waypoints(agent.get("waypoints", ""), who)
    if behaviour == "patrol" and len(waypoints) < 2:
        raise ConfigError(f"user {who}: behaviour patrol needs at least two waypoints")
    if behaviour == "follow" and not agent.get("follow"):
        raise ConfigError(f"user {who}: behaviour follow needs a follow attribute")
    return EmuUser(
        waypoints=waypoints,
        follow=agent.get("follow", ""),
        distance=abs(_number(agent, "distance", who, 3.0)),
        username=username,
        password=node.get("password", ""),
        worldpath=node.get("worldpath", ""),
        server=node.get("server", ""),
        chatdomain=node.get("chatdomain", ""),
        nickname=agent.get("nickname") or node.get("nickname", ""),
        x=_number(agent, "x", who),
        y=_number(agent, "y", who, 0.0),
        z=_number(agent, "z", who, 0.0),
        facing=_number(agent, "facing", who, 0.0) % math.tau,
        asset_file=agent.get("AssetFile", ""),
        dummy=agent.get("dummy", "") in ("1", "true"),
        behaviour=behaviour,
        radius=abs(_number(agent, "radius", who, 10.0)),
        speed=abs(_number(agent, "speed", who, 2.0)),
        autoreply=sentences,
    )


def parse_users(data: bytes, source: str) -> tuple[list[EmuUser], list[str]]:
    """The users of an EmuUsersDB document and one message per entry that was skipped."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ConfigError(f"{source}: not well-formed XML: {e}") from None
    if root.tag != "EmuDB":
        raise ConfigError(f"{source}: root element is <{root.tag}>, expected <EmuDB>")
    texts = {t.get("key", ""): _sentences(t.text) for t in root.iterfind("TextGroup/text")}
    users, errors, seen = [], [], set()
    for index, node in enumerate(root.iterfind("EmuUsers/user"), 1):
        try:
            user = _user(node, texts, index)
        except ConfigError as e:
            errors.append(f"{source}: {e}")
            continue
        if user.username in seen:
            errors.append(f"{source}: user {user.username!r}: duplicate username, skipped")
            continue
        seen.add(user.username)
        users.append(user)
    return users, errors


def load_users(path: str | Path) -> tuple[list[EmuUser], list[str]]:
    return parse_users(read_config_file(path), str(path))


def invisible(users: list[EmuUser]) -> list[str]:
    """Users with no AssetFile: they walk and see, but a grid shows nobody without one
    (as in the original), so say so."""
    return [user.username for user in users if not user.asset_file]

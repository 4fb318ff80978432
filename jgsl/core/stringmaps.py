"""The original string maps (JGSL_stringmap.lua): common strings travel as small ids.

Ids are 1-based positions. Tables are append-only ("only append new strings to make it back
compatible"): both ends must hold the same lists, so extensions go at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

ASSET_FILES = (
    "character/v3/Human/Female/HumanFemale.x",
    "character/v3/Human/Female/HumanFemale.xml",
    "character/v3/Human/Male/HumanMale.x",
    "character/v3/Human/Male/HumanMale.xml",
    "character/v3/dummy/dummy.x",
)


def _ccs(a: int, b: int, p: int, q: int, r: int) -> str:
    return f"0#0#{a}#{b}#0#@" + "0#F#0#0#0#0#" * 7 + f"@0#0#0#{p}#0#{q}#{r}#0#0#0#0#0#0#0#"


CCS = tuple(_ccs(*row) for row in (
    (6, 4, 235, 114, 170), (0, 1, 0, 10, 12), (4, 2, 214, 135, 163), (0, 1, 216, 113, 155),
    (1, 2, 231, 122, 177), (6, 4, 235, 114, 170), (2, 2, 217, 119, 169), (2, 3, 229, 115, 166),
    (2, 0, 252, 148, 178), (3, 1, 227, 118, 168),
))

_ANIMATIONS = (
    "凳子", "沙发", "躺椅", "椅子", "座位", "欢呼", "很兴奋的点头", "鼓掌", "欢迎", "偷笑", "再见",
    "出拳", "哭泣", "俯卧撑", "跳舞一", "讨论", "飞吻", "不可一世", "垂头丧气", "跳舞二", "弹钢琴",
    "睡觉", "紧张", "修改大自然", "人物诞生", "修改物体",
)
ANIMS = ("",) + tuple(f"character/Animation/v3/{name}.x" for name in _ANIMATIONS)


class StringMap:
    """Bidirectional string <-> id table; the lowest id wins for duplicates."""

    def __init__(self, strings: Iterable[str]) -> None:
        self._strings: list[str] = []
        self._ids: dict[str, int] = {}
        self.extend(strings)

    def extend(self, strings: Iterable[str]) -> None:
        for text in strings:
            self._strings.append(text)
            self._ids.setdefault(text, len(self._strings))

    def id_of(self, text: str) -> int:
        """The id of ``text``, or 0 if it is not in the map."""
        return self._ids.get(text, 0)

    def text_of(self, string_id: int) -> str | None:
        if 1 <= string_id <= len(self._strings):
            return self._strings[string_id - 1]
        return None

    def __len__(self) -> int:
        return len(self._strings)


def default_maps() -> dict[str, StringMap]:
    """Fresh maps for the mapped string fields, keyed by AgentState field name."""
    return {"asset_file": StringMap(ASSET_FILES), "ccs": StringMap(CCS), "anim": StringMap(ANIMS)}

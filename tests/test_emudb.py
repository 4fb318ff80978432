"""EmuUsersDB.xml: the original 2009 file unchanged, and bad entries reported by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from jgsl.config import ConfigError
from jgsl.emudb import invisible, load_users, parse_users

DATA = Path(__file__).parent / "data"


def test_original_file():
    users, errors = load_users(DATA / "EmuUsersDB.xml")
    assert errors == []
    assert [u.username for u in users] == ["LiXizhi2", "LiXizhi3", "__guest1", "__guest2",
                                           "__guest3"]
    first, second, guest = users[0], users[1], users[2]
    assert first.password == "1234567" and first.server == "1100"
    assert first.worldpath == "worlds/MyWorlds/AlphaWorld/"
    assert (first.x, first.y, first.z) == (20091.0, 36.717, 20086.0)
    assert first.nickname == "PE机器人2" and first.dummy
    assert first.asset_file == "character/v4/Can/can01/can01.x"
    assert first.autoreply == ("你好！我在做压力测试", "找找其他人吧")
    assert second.autoreply == ("你好 我是帕拉巫的客服", "我能为你做点什么")
    assert guest.x == pytest.approx(20074.420797751) and guest.nickname == ""
    assert guest.behaviour == "stand"


def test_bad_entries_are_named_and_others_still_load():
    doc = b"""<EmuDB><EmuUsers>
      <user username="ok" password="p" worldpath="w/"><playeragent x="1" z="2"/></user>
      <user username="nox" password="p" worldpath="w/"><playeragent z="2"/></user>
      <user username="badx" password="p"><playeragent x="east"/></user>
      <user username="far" password="p"><playeragent x="1e300"/></user>
      <user username="walk" password="p"><playeragent x="1" behaviour="fly"/></user>
      <user username="key" password="p"><playeragent x="1"/><autoreply textkey="none"/></user>
      <user password="p"><playeragent x="1"/></user>
      <user username="ok" password="p"><playeragent x="1"/></user>
      <user username="a b" password="p"><playeragent x="1"/></user>
    </EmuUsers></EmuDB>"""
    users, errors = parse_users(doc, "db.xml")
    assert [u.username for u in users] == ["ok"]
    expected = [
        "user 'nox': playeragent has no x",
        "user 'badx': playeragent x='east' is not a number",
        "user 'far': playeragent x='1e300' is out of range",
        "user 'walk': playeragent behaviour='fly'",
        "user 'key': autoreply textkey='none'",
        "user #7: no username",
        "user 'ok': duplicate username",
        "user 'a b': username is not a valid JID node part",
    ]
    assert len(errors) == len(expected)
    for error, text in zip(errors, expected, strict=True):
        assert error.startswith("db.xml: ") and text in error


def test_not_an_emudb():
    with pytest.raises(ConfigError, match="expected <EmuDB>"):
        parse_users(b"<JGSL/>", "x.xml")
    with pytest.raises(ConfigError, match="not well-formed"):
        parse_users(b"<EmuDB>", "x.xml")


def test_shipped_demo_users_load():
    users, errors = load_users(Path(__file__).parents[1] / "config" / "EmuUsersDB.xml")
    assert errors == [] and len(users) >= 3
    assert any(u.behaviour == "wander" and not u.dummy for u in users)


def test_a_user_without_asset_file_is_named_as_invisible():
    users, errors = parse_users(
        b"<EmuDB><EmuUsers><user username='ghost' password='p' worldpath='w/'>"
        b"<playeragent x='1' y='2' z='3'/></user><user username='seen' password='p' "
        b"worldpath='w/'><playeragent x='1' y='2' z='3' AssetFile='a.x'/></user>"
        b"</EmuUsers></EmuDB>", "t.xml")
    assert errors == [] and invisible(users) == ["ghost"]

"""The null echo and its driver (bench/echo.py): paced and unpaced senders."""

from __future__ import annotations

from jgsl.core.echo import DriverCore, EchoCore
from jgsl.wire.codec import Chat, Envelope


def bounce(echo: EchoCore, envelopes: list[Envelope]) -> list[Envelope]:
    return [b for e in envelopes for b in echo.receive(0.0, e)]


def test_echo_bounces_chat_to_its_sender():
    echo = EchoCore("echo.localhost")
    sent = Envelope("s0@drive.localhost", "echo.localhost", Chat("xx"))
    assert echo.receive(1.0, sent) == [
        Envelope("echo.localhost", "s0@drive.localhost", Chat("xx"))]


def test_unpaced_driver_sends_the_next_as_soon_as_one_returns():
    echo, driver = EchoCore("echo.localhost"), DriverCore("drive.localhost", "echo.localhost",
                                                          senders=3, size=10, paced=False)
    first = driver.connected(0.0)
    assert sorted(e.sender for e in first) == [f"s{i}@drive.localhost" for i in range(3)]
    back = bounce(echo, first)
    again = driver.receive(0.02, back[0])
    assert [e.sender for e in again] == [back[0].recipient]  # at once, not at a tick
    assert driver.rtts == [(0.02, 0.02)]
    assert driver.tick(0.05) == []  # every sender has one in flight


def test_paced_driver_waits_for_its_next_tick():
    echo, driver = EchoCore("echo.localhost"), DriverCore("drive.localhost", "echo.localhost",
                                                          senders=2, size=10, paced=True)
    back = bounce(echo, driver.connected(0.0))
    assert driver.receive(0.02, back[0]) == []
    assert [e.sender for e in driver.tick(0.1)] == [back[0].recipient]
    driver.stop(0.2)
    assert driver.receive(0.2, back[1]) == [] and driver.tick(0.3) == []

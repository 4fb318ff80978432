"""Scheduled full garbage collections: off Python's schedule, on ours, restored at stop."""

from __future__ import annotations

import gc

import pytest
from twisted.internet.task import Clock
from twisted.python.usage import UsageError

from jgsl.collector import ScheduledCollector
from jgsl.tap import Options


def test_full_collections_run_on_the_clock_and_python_settings_come_back():
    before = gc.get_threshold()
    calls: list[int] = []
    clock = Clock()
    collector = ScheduledCollector(clock, interval=60, collect=lambda g: calls.append(g) or 3)
    collector.startService()
    try:
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2] and full > 1_000_000  # Python's own: never
        assert gc.get_freeze_count() > 0  # start-up objects frozen out
        clock.advance(59)
        assert calls == []
        clock.advance(1)
        clock.advance(60)
        assert calls == [2, 2]
    finally:
        collector.stopService()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    clock.advance(600)
    assert calls == [2, 2]  # nothing after the stop


def test_option_zero_keeps_python_schedule_and_bad_values_fail():
    options = Options()
    options.parseOptions(["--role", "router", "--full-gc-interval", "0"])
    assert options["full-gc-interval"] == 0
    options = Options()
    options.parseOptions(["--role", "router"])
    assert options["full-gc-interval"] == 300
    with pytest.raises(UsageError):
        Options().parseOptions(["--role", "router", "--full-gc-interval", "-5"])

"""Repeats: a failure that repeats is logged when its reason changes, else once a window."""

from jgsl.core.droplog import Repeats


def test_a_repeated_failure_is_said_again_only_when_it_changes_or_a_window_passed():
    repeats = Repeats(window=60.0)
    assert repeats.due(0.0, "certificate verify failed")
    assert not repeats.due(1.0, "certificate verify failed")
    assert not repeats.due(59.0, "certificate verify failed")
    assert repeats.due(60.0, "certificate verify failed")  # a minute on: said again
    assert repeats.due(61.0, "Connection refused")  # another reason: said at once
    assert repeats.due(62.0, "certificate verify failed")

"""Test-wide settings."""

import os
import secrets

import pytest
from hypothesis import HealthCheck, settings

from tests.fakes import Log
from tests.processes import Processes

# The machine is shared and noisy: property tests assert behaviour, never timing.
settings.register_profile(
    "jgsl", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("jgsl")


@pytest.fixture
def procs(tmp_path):
    """Processes of one test, with fresh component and ticket secrets in their environment."""
    env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
           "JGSL_TICKET_SECRET": secrets.token_hex(16)}
    group = Processes(tmp_path, env)
    yield group
    group.kill_all()  # only does anything if a test failed before stopping its processes


@pytest.fixture
def logged():
    """The log lines emitted during the test (formatted), as a L{Log}."""
    from twisted.logger import globalLogPublisher

    log = Log()
    globalLogPublisher.addObserver(log)
    yield log
    globalLogPublisher.removeObserver(log)

"""Test-wide settings."""

from hypothesis import HealthCheck, settings

# The machine is shared and noisy: property tests assert behaviour, never timing.
settings.register_profile(
    "jgsl", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("jgsl")

"""Helpers for unit tests: a settable clock and a few assertions."""

from datetime import datetime, timedelta, timezone

__version__ = "0.1.0"


class FrozenClock:
    """A callable clock that returns a fixed UTC time until advanced."""

    def __init__(self, year=2024, month=1, day=1, hour=0, minute=0, second=0):
        self.now = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)
        return self.now


def assert_keys(mapping, *keys):
    """Raise AssertionError unless `mapping` has exactly `keys`."""
    missing = sorted(set(keys) - set(mapping))
    extra = sorted(set(mapping) - set(keys))
    if missing or extra:
        raise AssertionError("keys differ: missing %s, unexpected %s" % (missing, extra))

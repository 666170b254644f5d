"""UTC timestamps as ISO-8601 strings with a trailing 'Z'."""

from datetime import datetime, timezone

__version__ = "0.2.0"


def utc_now():
    """The current time, timezone-aware, in UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_iso(moment):
    """'2024-01-02T03:04:05Z' for an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text):
    """Inverse of to_iso."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

"""When a source syncs by itself: every interval ("15m", "1h", "1d") or on a cron expression.

Cron expressions are UTC and use cronsim (the library healthchecks.io runs its schedules on);
intervals are counted from the previous planned run, not from when a sync happened to end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from sync.errors import SourceConfigError

_INTERVAL = re.compile(r"^(?:every\s+)?(\d+)\s*(s|m|h|d)$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MANUAL = ("manual", "off", "never", "none")
MIN_INTERVAL_S = 10


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule; ``None`` from :func:`parse_schedule` means manual syncs only."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first planned run strictly after ``moment`` (an aware datetime)."""
        if self.interval is not None:
            return moment + self.interval
        assert self.cron is not None
        return next(CronSim(self.cron, moment))


def parse_schedule(text: str | None) -> Schedule | None:
    """Parse "15m", "every 2h", "30s", "1d", a 5-field cron expression, or "manual"."""
    if text is None or text.strip().lower() in MANUAL:
        return None
    value = " ".join(text.split())
    match = _INTERVAL.match(value)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds < MIN_INTERVAL_S:
            raise SourceConfigError(
                f"schedule {text!r} is too frequent: use at least {MIN_INTERVAL_S}s"
            )
        return Schedule(value, interval=timedelta(seconds=seconds))
    try:
        CronSim(value, datetime(2000, 1, 1, tzinfo=UTC))  # validates only
    except CronSimError as e:
        raise SourceConfigError(
            f"invalid schedule {text!r} ({e}): use an interval such as 15m, 2h, 1d, "
            "a cron expression such as '*/30 * * * *', or manual"
        ) from e
    return Schedule(value, cron=value)

"""When each job runs: a crontab line or a fixed interval, both aligned to the wall clock.

Every process that runs a scheduler must agree on the moments a job is due, because a run is
claimed in the database by its job name and trigger time. Crontab lines are aligned by
nature; intervals are counted from one fixed epoch rather than from when a process started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .errors import ConfigError

#: The jobs, in the order a night's work needs them.
JOB_NAMES = ("release", "expire", "birthdays", "tiers", "churn", "recommender")

#: Intervals count from here, so that every process computes the same trigger times.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

_EVERY = re.compile(r"^every\s+(\d+)\s+(second|minute|hour|day)s?$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    text: str
    #: seconds between runs for ``every …``; None for a crontab line
    interval: int | None

    def trigger(self) -> BaseTrigger:
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval, start_date=EPOCH, timezone=UTC)
        return _cron(self.text)

    def latest_fire(self, now: datetime) -> datetime:
        """The trigger time a run started at ``now`` belongs to (naive UTC, like every
        timestamp the plugin stores): the last moment at or before ``now`` the job was due."""
        aware = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        if self.interval is not None:
            steps = int((aware - EPOCH).total_seconds() // self.interval)
            return (EPOCH + timedelta(seconds=steps * self.interval)).replace(tzinfo=None)
        trigger = self.trigger()
        for lookback in (timedelta(minutes=2), timedelta(days=1), timedelta(days=32), timedelta(days=366)):
            fire, latest = trigger.get_next_fire_time(None, aware - lookback), None
            while fire is not None and fire <= aware:
                latest, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if latest is not None:
                return latest.astimezone(UTC).replace(tzinfo=None)
        return aware.replace(microsecond=0, tzinfo=None)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """Crontab weekdays (0 or 7 = Sunday) as names: APScheduler 3 numbers them from Monday,
    so ``from_crontab("0 4 * * 1")`` would run on Tuesdays."""
    if not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        else:
            low_text, _, high_text = span.partition("-")
            low = int(low_text)
            high = int(high_text) if high_text else (6 if step else low)
        if not 0 <= low <= high <= 7:
            raise ValueError(f"weekday {part!r} is outside 0-7")
        days.update(day % 7 for day in range(low, high + 1, int(step) if step else 1))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _cron(text: str) -> CronTrigger:
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday), timezone=UTC)


def parse_schedule(key: str, value: Any) -> Schedule | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key}: give a crontab line such as '15 2 * * *', 'every 10 minutes', or None.")
    text = " ".join(value.split()).lower()
    every = _EVERY.match(text)
    if every:
        seconds = int(every.group(1)) * _UNIT_SECONDS[every.group(2)]
        if seconds < 1:
            raise ConfigError(f"{key}: {value!r}: the interval must be at least one second.")
        return Schedule(text, seconds)
    try:
        _cron(text)
    except ValueError as exc:
        raise ConfigError(f"{key}: {value!r} is not a crontab line (minute hour day month weekday): {exc}") from None
    return Schedule(text, None)

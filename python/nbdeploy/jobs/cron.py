"""Cron expressions in a time zone: validation, the ticks between two instants, the next fire times.

Standard 5-field cron (minute hour day-of-month month day-of-week, as croniter reads it), evaluated in the
schedule's IANA time zone. Across daylight-saving changes:

- a local time that does not exist (spring forward) fires once, at the first instant after the gap;
- a local time that happens twice (fall back) fires once — at its first occurrence — when the hour field is
  fixed (``30 2 * * *``); with a wildcard or step hour field (``*/30 * * * *``) every real occurrence fires,
  because each is a distinct instant of an "every N" schedule.

Every instant returned is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import InvalidInputError

__all__ = ["CronSpec", "validate_cron", "validate_timezone"]


def validate_timezone(name: object) -> str:
    """Return ``name`` if it is an IANA time zone (``Europe/Berlin``, ``UTC``); raise InvalidInputError."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError("timezone must be an IANA name such as 'Europe/Berlin' or 'UTC'", "timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'", "timezone"
        ) from exc
    return name


def validate_cron(expr: object) -> str:
    """Return the normalised 5-field cron expression; raise :class:`InvalidInputError` when malformed."""
    from croniter import croniter

    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise InvalidInputError(
            f"cron {expr!r} must have 5 fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'",
            "cron",
        )
    normalised = " ".join(expr.split())
    if not croniter.is_valid(normalised):
        raise InvalidInputError(f"cron {expr!r} is not a valid cron expression, e.g. '*/15 * * * *'", "cron")
    return normalised


class CronSpec:
    """A validated cron expression in a time zone."""

    def __init__(self, expr: str, timezone: str = "UTC") -> None:
        self.expr = validate_cron(expr)
        self.timezone = validate_timezone(timezone)
        self.tz = ZoneInfo(self.timezone)
        hour_field = self.expr.split()[1]
        self._fixed_hour = "*" not in hour_field and "/" not in hour_field

    def __repr__(self) -> str:
        return f"CronSpec({self.expr!r}, {self.timezone!r})"

    def _is_repeat(self, local: datetime) -> bool:
        """Whether ``local`` is the second occurrence of a wall time that a fall-back change repeats."""
        naive = local.replace(tzinfo=None)
        first = naive.replace(tzinfo=self.tz, fold=0).utcoffset()
        second = naive.replace(tzinfo=self.tz, fold=1).utcoffset()
        return (
            first != second
            and local.utcoffset() == second
            and first is not None
            and second is not None
            and first > second
        )

    def iter_after(self, start: datetime) -> Iterator[datetime]:
        """Yield the ticks strictly after ``start`` (aware), in order, as UTC instants."""
        from croniter import croniter

        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        it = croniter(self.expr, start.astimezone(self.tz))
        last: datetime | None = None
        while True:
            local = it.get_next(datetime)
            if self._fixed_hour and self._is_repeat(local):
                continue
            tick = local.astimezone(UTC)
            if last is not None and tick <= last:  # never go back in time, whatever croniter does at a change
                continue
            last = tick
            yield tick

    def next_after(self, start: datetime) -> datetime:
        """The first tick strictly after ``start``, in UTC."""
        return next(self.iter_after(start))

    def next_fire_times(self, n: int = 5, start: datetime | None = None) -> list[datetime]:
        """The next ``n`` ticks after ``start`` (default: now), as UTC instants."""
        ticks = self.iter_after(start or datetime.now(UTC))
        return [next(ticks) for _ in range(max(0, int(n)))]

    def ticks_between(self, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
        """The ticks ``t`` with ``after < t <= until`` (at most ``limit``, the most recent ones kept)."""
        out: list[datetime] = []
        for tick in self.iter_after(after):
            if tick > until:
                break
            out.append(tick)
            if len(out) > limit:
                del out[0]
        return out

    def interval_hint(self) -> timedelta:
        """The gap between the next two ticks (used to size the grace for a tick that is due now)."""
        first, second = self.next_fire_times(2)
        return second - first

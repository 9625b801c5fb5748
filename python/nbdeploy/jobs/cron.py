"""Cron expressions in a time zone: validation, the ticks between two instants, the next fire times.

Standard 5-field cron (minute hour day-of-month month day-of-week, as croniter reads it), evaluated in the
schedule's IANA time zone. Across daylight-saving changes:

- a local time that does not exist (spring forward) fires once, at the first instant after the gap;
- a local time that happens twice (fall back) fires once — at its first occurrence — when the hour field is
  fixed (``30 2 * * *``); with a wildcard or step hour field (``*/30 * * * *``) every real occurrence fires,
  because each is a distinct instant of an "every N" schedule.

Every instant returned is timezone-aware UTC. Malformed input is an :class:`InvalidInputError` naming its
field (``cron``, ``timezone``, ``n``): not a string, empty, too long, not 5 fields, croniter's random (``R``)
or hashed (``H``) fields, an expression that never fires (``0 0 31 2 *``), an unknown or over-long zone. The
work is bounded: croniter searches at most 50 years for a tick, :meth:`CronSpec.ticks_between` walks at most
about ``2 × limit`` ticks however long the interval, and :meth:`CronSpec.next_fire_times` gives at most
:data:`MAX_FIRE_TIMES`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import InvalidInputError

__all__ = ["MAX_FIRE_TIMES", "CronSpec", "validate_cron", "validate_timezone"]

MAX_CRON_CHARS = 200
MAX_TIMEZONE_CHARS = 64
MAX_FIRE_TIMES = 1000
_FIELD = re.compile(r"[0-9A-Za-z*/,?#-]+")
_RANDOM_OR_HASHED = re.compile(r"(^|[,/-])[RH](\(|$|[,/-])", re.IGNORECASE)
_ZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")
_REFERENCE = datetime(2001, 1, 1, tzinfo=UTC)
_STALL = 10_000  # consecutive ticks skipped before the iteration is re-seeded (a croniter loop at a DST change)
_EXAMPLE = "e.g. '0 6 * * *' (06:00 every day) or '*/15 * * * *'"


def validate_timezone(name: object) -> str:
    """Return ``name`` if it is an IANA time zone (``Europe/Berlin``, ``UTC``); raise InvalidInputError."""
    if not isinstance(name, str) or not name.strip():
        got = "an empty string" if isinstance(name, str) else repr(name)[:40]
        raise InvalidInputError(
            f"timezone must be an IANA name such as 'Europe/Berlin' or 'UTC', got {got}", "timezone"
        )
    if len(name) > MAX_TIMEZONE_CHARS:
        raise InvalidInputError(
            f"timezone is {len(name):,} characters long; IANA names are at most {MAX_TIMEZONE_CHARS} "
            "(e.g. 'America/Argentina/Buenos_Aires')",
            "timezone",
        )
    try:
        if not _ZONE.fullmatch(name):
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError) as exc:  # OSError: a folder ('Europe')
        hint = _zone_like(name)
        raise InvalidInputError(
            f"unknown time zone {name!r}: "
            + (f"did you mean {hint!r}?" if hint else "use an IANA name such as 'Europe/Berlin' or 'UTC'"),
            "timezone",
        ) from exc
    return name


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    from zoneinfo import available_timezones

    return {zone.lower(): zone for zone in available_timezones()}


def _zone_like(name: str) -> str | None:
    """The IANA name ``name`` differs from only in case or spacing (``utc`` → ``UTC``), if any."""
    key = name.strip().lower().replace(" ", "_")
    return _zone_names().get(key) if key else None


def validate_cron(expr: object) -> str:
    """Return the normalised 5-field cron expression; raise :class:`InvalidInputError` (field ``cron``) when it
    is malformed or never fires."""
    from croniter import croniter

    if not isinstance(expr, str):
        raise InvalidInputError(f"cron must be a string, {_EXAMPLE}; got {repr(expr)[:40]}", "cron")
    if not expr.strip():
        raise InvalidInputError(f"cron is empty: give 5 fields, {_EXAMPLE}", "cron")
    if len(expr) > MAX_CRON_CHARS:
        raise InvalidInputError(
            f"cron is {len(expr):,} characters long; the limit is {MAX_CRON_CHARS}: {_EXAMPLE}", "cron"
        )
    fields = expr.split()
    if len(fields) != 5:
        raise InvalidInputError(
            f"cron {expr!r} must have 5 fields: minute hour day-of-month month day-of-week, {_EXAMPLE}", "cron"
        )
    normalised = " ".join(fields)
    if any(_RANDOM_OR_HASHED.search(field) for field in fields):
        raise InvalidInputError(
            f"cron {expr!r} uses a random (R) or hashed (H) field, which would fire at a different time on every "
            "server: give the minute and hour, e.g. '17 3 * * *'",
            "cron",
        )
    try:
        valid = all(_FIELD.fullmatch(field) for field in fields) and croniter.is_valid(normalised)
    except Exception:  # croniter raises more than its own errors on odd input
        valid = False
    if not valid:
        raise InvalidInputError(f"cron {expr!r} is not a valid cron expression, {_EXAMPLE}", "cron")
    if not _fires(normalised):
        raise InvalidInputError(
            f"cron {expr!r} never fires: no date has that day of the month in that month (e.g. 31 February). "
            "Pick a day the month has, or 'L' for its last day",
            "cron",
        )
    return normalised


@lru_cache(maxsize=1024)
def _fires(expr: str) -> bool:
    """Whether ``expr`` has a tick within croniter's 50-year search (a date it names exists)."""
    from croniter import croniter

    try:
        croniter(expr, _REFERENCE, max_years_between_matches=50).get_next(datetime)
    except Exception:  # CroniterBadDateError: no date in 50 years; anything else: not a schedule either
        return False
    return True


def _fire_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | str | float):
        raise InvalidInputError(f"n must be a whole number from 0 to {MAX_FIRE_TIMES}, got {n!r}", "n")
    try:
        count = int(n)
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"n must be a whole number from 0 to {MAX_FIRE_TIMES}, got {n!r}", "n") from exc
    if count != n and not isinstance(n, str):
        raise InvalidInputError(f"n must be a whole number from 0 to {MAX_FIRE_TIMES}, got {n!r}", "n")
    if count > MAX_FIRE_TIMES:
        raise InvalidInputError(f"n must be at most {MAX_FIRE_TIMES}, got {count}", "n")
    return max(0, count)


class CronSpec:
    """A validated cron expression in a time zone.

    Raises :class:`InvalidInputError` for a malformed or never-firing ``expr`` or an unknown ``timezone``.
    """

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

    def _croniter(self, start: datetime, is_prev: bool = False) -> object:
        from croniter import croniter

        try:
            return croniter(self.expr, start.astimezone(self.tz), is_prev=is_prev, max_years_between_matches=50)
        except (ValueError, OverflowError) as exc:
            raise InvalidInputError(f"cannot follow cron {self.expr!r} from {start!s}: {exc}", "start") from exc

    def iter_after(self, start: datetime) -> Iterator[datetime]:
        """Yield the ticks strictly after ``start`` (aware), in order, as UTC instants.

        Raises :class:`InvalidInputError` when there is no next tick (past year 9999).
        """
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        it = self._croniter(start)
        last: datetime | None = None
        skipped = 0
        while True:
            try:
                local = it.get_next(datetime)  # type: ignore[attr-defined]
            except Exception as exc:  # CroniterBadDateError, or a year past datetime's range
                after = last or start
                raise InvalidInputError(
                    f"cron {self.expr!r} has no tick after {after.astimezone(UTC):%Y-%m-%d %H:%M} UTC", "cron"
                ) from exc
            tick = local.astimezone(UTC)
            if (self._fixed_hour and self._is_repeat(local)) or (last is not None and tick <= last):
                skipped += 1  # a repeated wall time, or croniter going back in time at a change
                if skipped > _STALL:
                    it, skipped = self._croniter((last or tick) + timedelta(minutes=1)), 0
                continue
            skipped = 0
            last = tick
            yield tick

    def next_after(self, start: datetime) -> datetime:
        """The first tick strictly after ``start``, in UTC."""
        return next(self.iter_after(start))

    def next_fire_times(self, n: int = 5, start: datetime | None = None) -> list[datetime]:
        """The next ``n`` ticks after ``start`` (default: now), as UTC instants.

        Raises :class:`InvalidInputError` (field ``n``) unless ``n`` is a whole number up to
        :data:`MAX_FIRE_TIMES`.
        """
        count = _fire_count(n)
        ticks = self.iter_after(start or datetime.now(UTC))
        return [next(ticks) for _ in range(count)]

    def ticks_between(self, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
        """The ticks ``t`` with ``after < t <= until`` (at most ``limit``, the most recent ones kept).

        However long the interval, at most about ``2 × limit`` ticks are computed: when it holds more, the
        walk starts shortly before the ``2 × limit``-th tick counted back from ``until``.
        """
        limit = max(1, int(limit))
        if until <= after:
            return []
        out: deque[datetime] = deque(maxlen=limit)
        for tick in self.iter_after(self._walk_start(after, until, limit)):
            if tick > until:
                break
            out.append(tick)
        return list(out)

    def _walk_start(self, after: datetime, until: datetime, limit: int) -> datetime:
        """``after``, or a later instant that still leaves more than ``limit`` ticks before ``until``."""
        back = self._croniter(until, is_prev=True)
        earliest: datetime | None = None
        for _ in range(2 * limit + 2):
            try:
                tick = back.get_prev(datetime).astimezone(UTC)  # type: ignore[attr-defined]
            except Exception:  # no earlier tick within croniter's search: walk from `after`
                return after
            if tick <= after:
                return after
            earliest = tick
        assert earliest is not None
        return max(after, earliest - timedelta(hours=3))  # the margin covers any DST shift around it

    def interval_hint(self) -> timedelta:
        """The gap between the next two ticks (used to size the grace for a tick that is due now)."""
        first, second = self.next_fire_times(2)
        return second - first

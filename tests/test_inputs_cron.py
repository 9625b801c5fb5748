"""Cron expressions and time zones: every malformed value is a 400 naming its field, an expression that never
fires is refused up front, and no call does unbounded work."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError
from nbdeploy.jobs.cron import MAX_FIRE_TIMES, CronSpec, validate_cron, validate_timezone
from tests.helpers import NOTEBOOKS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 31 2 *", "never fires"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 31 2 ?", "never fires"),
        (None, "must be a string"),
        (5, "must be a string"),
        (["0", "0", "*", "*", "*"], "must be a string"),
        ("", "empty"),
        ("   \t ", "empty"),
        ("* " * 5000, "characters long"),
        ("* * * *", "must have 5 fields"),
        ("61 * * * *", "not a valid cron"),
        ("0 0 * * 8", "not a valid cron"),
        ("٣ * * * *", "not a valid cron"),
        ("0 0 * * mon;rm", "not a valid cron"),
        ("R R * * *", "random"),
        ("H 0 * * *", "hashed"),
    ],
)
def test_a_malformed_or_never_firing_cron_is_a_400(expr: object, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidInputError, match=message) as err:
        validate_cron(expr)
    assert err.value.field == "cron" and err.value.http_status == 400
    with pytest.raises(InvalidInputError):
        CronSpec(expr)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 2


def test_rare_but_real_expressions_are_kept() -> None:
    for expr in ("0 0 29 2 *", "0 0 L 2 *", "0 0 31 2 1", "0 0 * MAR THU", "0 12 1-31/10 * *", "0  6 *  * *"):
        assert validate_cron(expr) == " ".join(expr.split())
    leap = CronSpec("0 0 29 2 *").next_fire_times(2, utc(2097, 1, 1))
    assert leap == [utc(2104, 2, 29), utc(2108, 2, 29)]  # 2100 is no leap year: an 8-year gap


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (None, "IANA name"),
        ("", "IANA name"),
        ("  ", "IANA name"),
        (7, "IANA name"),
        ("A" * 10_000, "characters long"),
        ("Europe", "unknown time zone"),
        ("Mars/Olympus", "unknown time zone"),
        ("../../etc/passwd", "unknown time zone"),
        ("/etc/localtime", "unknown time zone"),
        ("zone.tab", "unknown time zone"),
        ("UTC\n", "unknown time zone"),
        ("Europe/Berlin\x00", "unknown time zone"),
        ("utc", "did you mean 'UTC'"),
        ("europe/berlin", "did you mean 'Europe/Berlin'"),
    ],
)
def test_a_malformed_time_zone_is_a_400(zone: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        validate_timezone(zone)
    assert err.value.field == "timezone"
    with pytest.raises(InvalidInputError):
        CronSpec("0 6 * * *", zone)  # type: ignore[arg-type]


def test_valid_time_zones_pass() -> None:
    for zone in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince"):
        assert validate_timezone(zone) == zone


def test_next_fire_times_counts_are_bounded() -> None:
    spec = CronSpec("* * * * *")
    assert len(spec.next_fire_times(MAX_FIRE_TIMES, utc(2026, 1, 1))) == MAX_FIRE_TIMES
    assert spec.next_fire_times(-3, utc(2026, 1, 1)) == []
    assert spec.next_fire_times("2", utc(2026, 1, 1)) == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)]
    for n in (10**9, MAX_FIRE_TIMES + 1, 2.5, "many", None, True):
        with pytest.raises(InvalidInputError) as err:
            spec.next_fire_times(n)  # type: ignore[arg-type]
        assert err.value.field == "n"


def test_no_tick_past_the_calendar_is_a_400_not_a_crash() -> None:
    with pytest.raises(InvalidInputError, match="no tick after") as err:
        CronSpec("0 0 1 1 *").next_fire_times(2, utc(9999, 6, 1))
    assert err.value.field == "cron"


def test_ticks_between_walks_a_bounded_number_of_ticks_over_any_interval() -> None:
    spec = CronSpec("* * * * *", "Europe/Berlin")
    started = time.perf_counter()
    ticks = spec.ticks_between(utc(2000, 1, 1), utc(2026, 1, 1), limit=50)  # ~13.7 million ticks in the interval
    assert time.perf_counter() - started < 5
    assert len(ticks) == 50 and ticks[-1] == utc(2026, 1, 1) and ticks[0] == utc(2025, 12, 31, 23, 11)
    assert spec.ticks_between(utc(2026, 1, 1), utc(2025, 1, 1)) == []


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("expr", ["*/7 * * * *", "30 2 * * *", "*/10 2 * * *", "0 * * * *"])
def test_the_bounded_walk_keeps_exactly_the_most_recent_ticks_across_dst(zone: str, expr: str) -> None:
    spec = CronSpec(expr, zone)
    after, until = utc(2026, 3, 20), utc(2026, 11, 10)  # both DST changes of each zone's year inside
    every: list[datetime] = []
    for tick in spec.iter_after(after):
        if tick > until:
            break
        every.append(tick)
    for limit in (1, 7, 200):
        assert spec.ticks_between(after, until, limit) == every[-limit:], limit
    assert all(b - a > timedelta(0) for a, b in itertools.pairwise(every))


def test_nothing_is_stored_for_a_refused_schedule(nbd_home: Path) -> None:
    with nbd.Nbdeploy() as app:
        app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
        for kwargs, field in (
            ({"cron": "0 0 31 2 *"}, "cron"),
            ({"cron": None}, "cron"),
            ({"cron": "0 6 * * *", "timezone": "x" * 10_000}, "timezone"),
            ({"cron": "0 6 * * *", "timezone": None}, "timezone"),
        ):
            with pytest.raises(InvalidInputError) as err:
                app.schedules.add("quick", **kwargs)  # type: ignore[arg-type]
            assert err.value.field == field
        assert app.schedules.list() == []
        schedule = app.schedules.add("quick", "0 6 * * *", timezone="Europe/Berlin")
        with pytest.raises(InvalidInputError) as err:
            app.schedules.update(schedule.id, cron="0 0 30 2 *")
        assert err.value.field == "cron"
        assert app.schedules.get(schedule.id).cron == "0 6 * * *"

"""Clocks for the scheduler and dispatcher: the system clock, and clocks tests and benchmarks can drive.

``FastClock`` runs virtual time ``speed`` times faster than real time from a shared origin, so several
processes given the same origin agree on "now" (two schedulers can race over many cron ticks in seconds).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from ..exceptions import InvalidInputError

__all__ = ["Clock", "FastClock", "ManualClock", "SystemClock", "parse_clock"]


class Clock:
    """``now()`` is an aware UTC datetime; ``real_seconds(v)`` is how long ``v`` virtual seconds last."""

    speed: float = 1.0

    def now(self) -> datetime:
        raise NotImplementedError

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long to wait in real time for ``virtual_seconds`` to pass on this clock."""
        return max(0.0, virtual_seconds) / self.speed


class SystemClock(Clock):
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FastClock(Clock):
    """Virtual time: ``origin + (time.time() - real_origin) * speed``."""

    def __init__(self, origin: datetime, real_origin: float, speed: float) -> None:
        if origin.tzinfo is None or speed <= 0:
            raise InvalidInputError("a fast clock needs an aware origin and a positive speed", "clock")
        self.origin, self.real_origin, self.speed = origin, real_origin, float(speed)

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.time() - self.real_origin) * self.speed)

    def spec(self) -> str:
        """The text :func:`parse_clock` turns back into this clock (to hand it to another process)."""
        return f"{self.origin.isoformat()}@{self.real_origin!r}x{self.speed!r}"


class ManualClock(Clock):
    """A clock that only moves when told to (``set`` / ``advance``)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def parse_clock(spec: str | None) -> Clock:
    """``None``/``""`` → :class:`SystemClock`; ``"<iso origin>@<unix time>x<speed>"`` → :class:`FastClock`."""
    if not spec:
        return SystemClock()
    try:
        origin_text, _, rest = spec.rpartition("@")
        real_text, _, speed_text = rest.partition("x")
        origin = datetime.fromisoformat(origin_text)
        return FastClock(origin, float(real_text), float(speed_text))
    except ValueError as exc:
        raise InvalidInputError(f"clock {spec!r} is not '<iso time>@<unix time>x<speed>'", "clock") from exc

"""How long a version's calls take: a moving average per key, kept by the server's pools and the replicas."""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["MovingAverages"]


class MovingAverages:
    """``key -> milliseconds``: each new sample weighs a fifth. At most ``limit`` keys (all forgotten past it);
    with ``skip_first`` a key's first sample is not counted (a version's first call pays its load)."""

    def __init__(self, *, skip_first: bool = False, limit: int = 10_000) -> None:
        self.skip_first, self.limit = skip_first, limit
        self._ms: dict[Hashable, float] = {}
        self._seen: set[Hashable] = set()

    def get(self, key: Hashable) -> float | None:
        return self._ms.get(key)

    def learn(self, key: Hashable, ms: float) -> None:
        if self.skip_first and key not in self._seen:
            if len(self._seen) >= self.limit:
                self._seen.clear()
            self._seen.add(key)
            return
        before = self._ms.get(key)
        if before is None and len(self._ms) >= self.limit:
            self._ms.clear()
        self._ms[key] = ms if before is None else 0.8 * before + 0.2 * ms

"""``GET /nbdeploy/api/status``: version and settings of the serving process (secrets masked)."""

from __future__ import annotations

from .._version import __version__
from .base import NbdeployHandler


class StatusHandler(NbdeployHandler):
    async def get(self) -> None:
        rows = self.nbd.settings.describe()
        self.send_json(
            {
                "version": __version__,
                "settings": {name: {"value": value, "source": source} for name, value, source in rows},
            }
        )


default_handlers = [(r"/status", StatusHandler)]

"""Webhook notifications: a JSON POST when a run fails (and, when asked, when it succeeds).

``notify`` is a URL (failures only) or ``{"url": ..., "on": ["failure", "success"]}``. Failure means a run that
ended ``failed`` or ``timed_out`` after its last attempt; a cancelled run notifies nobody. Delivery is
best-effort, from a background thread, with three tries.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import InvalidInputError

__all__ = ["normalize_notify", "notify_run", "should_notify"]

log = logging.getLogger("nbdeploy.jobs")
EVENTS = ("failure", "success")


def normalize_notify(notify: Any) -> dict[str, Any] | None:
    """Return ``{"url", "on"}`` for a URL or a dict; raise :class:`InvalidInputError` when malformed."""
    if notify is None or notify == "":
        return None
    if isinstance(notify, str):
        notify = {"url": notify}
    if not isinstance(notify, dict) or not isinstance(notify.get("url"), str):
        raise InvalidInputError("notify must be a webhook URL or {'url': ..., 'on': ['failure', 'success']}", "notify")
    url = notify["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"notify URL {url!r} must be an http:// or https:// URL", "notify")
    on = notify.get("on", ["failure"])
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, list) or not on or any(e not in EVENTS for e in on):
        raise InvalidInputError(f"notify 'on' must list events from {EVENTS}", "notify")
    return {"url": url, "on": sorted(set(on))}


def should_notify(notify: dict[str, Any] | None, status: str) -> bool:
    """Whether a run that ended in ``status`` notifies the webhook configured by ``notify``."""
    if not notify:
        return False
    event = {"failed": "failure", "timed_out": "failure", "succeeded": "success"}.get(status)
    return event is not None and event in notify.get("on", ["failure"])


def _post(url: str, payload: dict[str, Any], tries: int = 3, timeout: float = 10.0) -> bool:
    body = json.dumps(payload, default=str).encode()
    for attempt in range(tries):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "nbdeploy"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if response.status < 300:
                    return True
        except (urllib.error.URLError, OSError) as exc:
            log.warning("webhook %s failed (try %d of %d): %s", url, attempt + 1, tries, exc)
        time.sleep(0.5 * 2**attempt)
    return False


def notify_run(notify: dict[str, Any] | None, run: dict[str, Any]) -> threading.Thread | None:
    """POST ``{"event": "run.<status>", "run": run}`` to the webhook if ``notify`` asks for this outcome.

    Returns the sending thread (``None`` when nothing is sent).
    """
    if not should_notify(notify, run.get("status", "")):
        return None
    assert notify is not None
    payload = {"event": f"run.{run['status']}", "run": run}
    thread = threading.Thread(target=_post, args=(notify["url"], payload), name="nbdeploy-notify", daemon=True)
    thread.start()
    return thread

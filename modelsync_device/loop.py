"""Keep syncing: poll with jitter, and sync at once when a registry notification (SNS/SQS) says so."""

from __future__ import annotations

import http.server
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from modelsync_protocol import ALIAS_MOVED, SYNC_EVENT_TYPES, check_model_name

from .client import SyncResult, sync
from .signature import load_public_key
from .store import ModelStore
from .telemetry import Telemetry
from .transport import DOWNLOAD_DEADLINE_SECONDS, MAX_ANSWER_BYTES, MIN_DOWNLOAD_RATE, Opener

log = logging.getLogger("modelsync_device")

EVENT_TYPES = SYNC_EVENT_TYPES


def parse_notification(message: Any) -> dict[str, Any] | None:
    """The registry event inside ``message``, or None if it is not one.

    Accepts the raw event ``{"event_type": ..., "model": ...}`` (SNS raw message delivery), the SNS
    envelope ``{"Type": "Notification", "Message": "<json>", ...}`` (HTTP endpoint, or SQS without raw
    delivery), an SQS message ``{"Body": ...}`` / ``{"body": ...}``, as a dict, JSON text or bytes.
    """
    for _ in range(4):  # unwrap at most a few layers
        if isinstance(message, (bytes, bytearray)):
            message = message.decode("utf-8", "replace")
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                return None
        if not isinstance(message, dict):
            return None
        if "event_type" in message:
            return message
        if message.get("Type") == "Notification" and "Message" in message:
            message = message["Message"]
        elif "Body" in message or "body" in message:
            message = message.get("Body", message.get("body"))
        else:
            if message.get("Type") == "SubscriptionConfirmation":
                log.warning("SNS subscription confirmation received: confirm it by visiting SubscribeURL %s",
                            message.get("SubscribeURL"))
            return None
    return None


class SyncLoop:
    """Poll the registry every ``interval`` seconds (+/- ``jitter``), sooner when :meth:`on_event` says so.

    Jitter spreads a fleet's requests; an event-triggered sync waits a random ``0..event_spread``
    seconds for the same reason (every device gets the notification at once). Telemetry, when given,
    is flushed after each sync.
    """

    def __init__(self, api_url: str, model: str, store: ModelStore, *, alias: str = "latest",
                 device_id: str | None = None, public_key: Any = None, http: Opener | None = None,
                 interval: float = 300.0, jitter: float = 0.1, event_spread: float = 5.0,
                 telemetry: Telemetry | None = None, version: int | None = None,
                 download_deadline: float = DOWNLOAD_DEADLINE_SECONDS,
                 min_download_rate: float = MIN_DOWNLOAD_RATE,
                 on_result: Callable[[SyncResult], None] | None = None) -> None:
        check_model_name(model)
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.api_url, self.model, self.store, self.alias = api_url, model, store, alias
        self.device_id, self.http = device_id, http
        self.public_key = load_public_key(public_key) if public_key is not None else None
        self.interval, self.jitter, self.event_spread = interval, jitter, event_spread
        self.telemetry = telemetry
        self.version = version
        self.download = (download_deadline, min_download_rate)
        self.on_result = on_result
        self.results: list[SyncResult] = []
        self._wake = threading.Event()

    def on_event(self, message: Any) -> bool:
        """Feed an SNS/SQS message; returns True if it concerns this model and alias (a sync is scheduled)."""
        event = parse_notification(message)
        if event is None or event.get("event_type") not in EVENT_TYPES or event.get("model") != self.model:
            return False
        detail = event.get("detail")
        alias = event.get("alias", detail.get("alias") if isinstance(detail, dict) else None)
        if event["event_type"] == ALIAS_MOVED and alias not in (None, self.alias):
            return False
        log.info("%s: %s event, syncing now", self.model, event["event_type"])
        self._wake.set()
        return True

    def next_delay(self) -> float:
        return max(0.0, self.interval * (1.0 + random.uniform(-self.jitter, self.jitter)))

    def sync_once(self) -> SyncResult:
        try:
            result = sync(self.api_url, self.model, self.store, self.alias, self.device_id, self.public_key,
                          self.http, version=self.version, download_timeout=self.download[0],
                          min_download_rate=self.download[1])
        except Exception as exc:  # the loop must survive anything and keep the model serving
            log.exception("sync of %s crashed", self.model)
            active = self.store.active_entry(self.model)
            result = SyncResult("offline", self.model, None if active is None else int(active["version"]),
                                f"sync crashed: {exc}")
        self.results.append(result)
        del self.results[:-100]
        if self.on_result is not None:
            self.on_result(result)
        if self.telemetry is not None and result.status in ("updated", "unchanged", "refused"):
            try:
                self.telemetry.flush(self.api_url, self.model, self.device_id, http=self.http)
            except Exception:  # telemetry is best effort
                log.exception("telemetry flush for %s crashed", self.model)
        return result

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Sync now, then on every tick or event, until ``stop_event`` is set."""
        stop = stop_event if stop_event is not None else threading.Event()
        while not stop.is_set():
            self.sync_once()
            deadline = time.monotonic() + self.next_delay()
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self._wake.wait(min(remaining, 0.25)):
                    self._wake.clear()
                    spread = random.uniform(0, self.event_spread) if self.event_spread > 0 else 0.0
                    stop.wait(spread)
                    break


def serve_notifications(loop: SyncLoop, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Accept SNS HTTP(S) deliveries (or any POST of an event) and feed them to ``loop.on_event``.

    Runs in a daemon thread; returns the server (``server.server_address``, ``server.shutdown()``).
    The notification is only a hint to sync now - it carries no trust, so its SNS signature is not
    checked: whatever it says, the device installs only what the manifest checks allow.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_ANSWER_BYTES))
            triggered = loop.on_event(body)
            answer = json.dumps({"sync": triggered}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("notification endpoint: " + format, *args)

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="modelsync-notifications", daemon=True).start()
    return server


def run_forever(api_url: str, model: str, store: ModelStore, *, interval: float = 300.0,
                stop_event: threading.Event | None = None, **kwargs: Any) -> SyncLoop:
    """Convenience: build a :class:`SyncLoop` and run it until ``stop_event`` is set; returns the loop.

    To feed notifications, build the :class:`SyncLoop` yourself and call ``loop.on_event`` from the
    thread that reads SQS / receives the SNS HTTP POST, while ``loop.run_forever`` runs in another.
    """
    loop = SyncLoop(api_url, model, store, interval=interval, **kwargs)
    loop.run_forever(stop_event)
    return loop

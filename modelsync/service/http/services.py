"""What the Score handler needs at import, without the resolver: the services, size checks, a lazy resolver.

The Powertools resolver (its OpenAPI/pydantic validation machinery and the request models) costs a
tenth of a second to import and build; nothing of it is needed before the first request, so
:class:`LazyResolver` builds it then (once per execution environment). ``make openapi`` and the tests build
it directly with :func:`modelsync.service.http.routes.build_resolver`, unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PayloadTooLarge

if TYPE_CHECKING:
    from ..admin import RegistryAdmin
    from ..config import Settings
    from ..drift import DriftService
    from ..metrics import MetricsService
    from ..serving import ServingService
    from ..telemetry import TelemetryService
    from .routes import Resolver

TELEMETRY_ROUTE = "/models/{name}/telemetry"
# the scoring routes (their Measure's ``route``): a request refused before the service runs is measured too
SCORING_ROUTES = {"/models/{name}/predict": "predict", "/v2/models/{name}/infer": "v2",
                  "/v2/models/{name}/versions/{version}/infer": "v2"}


@dataclass
class Services:
    """The plain services the routes call."""

    serving: ServingService
    admin: RegistryAdmin
    telemetry: TelemetryService
    metrics: MetricsService | None = None  # per-version scoring metrics (None: not served here)
    drift: DriftService | None = None


# -- request size (checked by the handler before the resolver parses anything) -------------------------

def request_size_limit(event: dict[str, Any], settings: Settings) -> int:
    """The body limit of this request: ``MaxRequestBytes``, and a smaller one for device telemetry."""
    resource = event.get("resource") or event.get("requestContext", {}).get("resourcePath")
    if event.get("httpMethod") == "POST" and (resource == TELEMETRY_ROUTE
                                             or str(event.get("path", "")).endswith("/telemetry")):
        return min(settings.max_request_bytes, settings.max_telemetry_bytes)
    return settings.max_request_bytes


def check_request_size(event: dict[str, Any], limit: int) -> None:
    """Refuse an oversized body before any parsing (raises :class:`PayloadTooLarge`)."""
    body = event.get("body") or ""
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    if size > limit:
        raise PayloadTooLarge(f"request body is {size} bytes, over the limit of {limit} bytes")


def observe_refused(observer: Callable[[Any], None] | None, event: Any, code: str) -> None:
    """A scoring request refused before the serving service ran (body too large, not JSON, a body of the
    wrong shape): measured as the service measures the others (version ``-``, its error kind), so
    ``errors_by_kind`` counts every refused scoring request. Other routes, and names that cannot be a
    model's (no metric dimension from arbitrary text), are not measured."""
    from ..layout import valid_model_name
    from ..metrics import Measure
    from ..rollout import BASE

    if observer is None or not isinstance(event, Mapping):
        return
    route = SCORING_ROUTES.get(str(event.get("resource") or ""))
    name = (event.get("pathParameters") or {}).get("name") if route else None
    if route and isinstance(name, str) and valid_model_name(name):
        observer(Measure(model=name, version="-", side=BASE, route=route, error=code))


# -- the resolver, built on the first request ---------------------------------------------------------

class LazyResolver:
    """``build_resolver(services)`` on the first :meth:`resolve` (validation stays on, as built eagerly)."""

    def __init__(self, services: Callable[[], Services], enable_validation: bool = True) -> None:
        self._services = services
        self._enable_validation = enable_validation
        self._app: Resolver | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Resolver:
        """The resolver (built now if need be): tests and tools reach its routes."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from .routes import build_resolver

                    self._app = build_resolver(self._services, enable_validation=self._enable_validation)
        return self._app

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self.app.resolve(event, context)

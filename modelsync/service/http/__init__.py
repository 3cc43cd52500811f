"""The HTTP adapter of the Score function: API Gateway proxy events in, proxy responses out.

* ``routes``: the Powertools resolver and its routes (ETag/If-Match rules);
* ``services``: what the handler needs at import (``Services``, request size checks, ``LazyResolver``:
  the resolver built on the first request, so its validation machinery is not paid at import);
* ``models``: the request bodies (pydantic);
* ``errors``: THE table from domain errors to HTTP statuses, and the error body;
* ``spec``: what the OpenAPI document says beyond the signatures (modelsync.service.openapi writes it).

The services it calls (modelsync.service.serving, .admin, .telemetry) know nothing of HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ERROR_STATUS, error_proxy_response, status_for
from .services import LazyResolver, Services, check_request_size, observe_refused, request_size_limit

if TYPE_CHECKING:
    from .routes import build_resolver

__all__ = ["ERROR_STATUS", "LazyResolver", "Services", "build_resolver", "check_request_size",
           "error_proxy_response", "observe_refused", "request_size_limit", "status_for"]


def __getattr__(name: str) -> Any:
    """``build_resolver`` imports the routes (Powertools' resolver, pydantic) only when asked for."""
    if name == "build_resolver":
        from .routes import build_resolver

        return build_resolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

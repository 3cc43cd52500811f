"""The HTTP adapter of the Score function: API Gateway proxy events in, proxy responses out.

* ``routes``: the Powertools resolver and its routes (plus request size checks, ETag/If-Match rules);
* ``models``: the request bodies (pydantic);
* ``errors``: THE table from domain errors to HTTP statuses, and the error body;
* ``spec``: what the OpenAPI document says beyond the signatures (modelsync.service.openapi writes it).

The services it calls (modelsync.service.serving, .admin, .telemetry) know nothing of HTTP.
"""

from __future__ import annotations

from .errors import ERROR_STATUS, error_proxy_response, status_for
from .routes import Services, build_resolver, check_request_size, request_size_limit

__all__ = ["ERROR_STATUS", "Services", "build_resolver", "check_request_size", "error_proxy_response",
           "request_size_limit", "status_for"]

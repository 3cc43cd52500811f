"""A local API Gateway (REST API, Lambda proxy integration) in front of the template's Api events.

Each HTTP request is matched against the template's route templates (``/models/{name}/predict``) with
API Gateway's precedence (a literal segment over ``{param}``), turned into a version 1.0 proxy event and
answered with what the handler returns, as ``sam local start-api`` does. Authorisation the template
declares (each route's :class:`~modelsync.local.auth.RouteAuth`) is enforced when the stack runs with
``--auth`` (:mod:`modelsync.local.auth`). :func:`proxy_event` and :meth:`ApiGateway.handle` are
transport-free: the integration tests call them in-process.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import logging
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import static
from .auth import LocalAuth, RouteAuth
from .runtime import ACCOUNT_ID, FunctionSpec, Runtime

log = logging.getLogger("modelsync.local")

MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_ERROR = {"message": "Internal server error"}


@dataclass
class Route:
    """One Api event: ``method`` (upper case) and ``path`` as written in the template."""

    method: str
    path: str
    function: FunctionSpec
    event_name: str
    stage: str = "Prod"
    api_id: str = "local"
    auth: RouteAuth = field(default_factory=RouteAuth)
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self.path = "/" + self.path.strip("/") if self.path.strip("/") else "/"
        self.segments = tuple(s for s in self.path.split("/") if s)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Path parameters if the request path's segments fit this route's template."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for tmpl, seg in zip(self.segments, segments, strict=True):
            if tmpl.startswith("{") and tmpl.endswith("}"):
                params[tmpl[1:-1]] = seg
            elif tmpl != seg:
                return None
        return params

    def specificity(self) -> tuple[int, ...]:
        """Sort key: API Gateway prefers a literal segment to a ``{param}``."""
        return tuple(1 if s.startswith("{") else 0 for s in self.segments)


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    """(the route with API Gateway's precedence, its path parameters), or (None, {})."""
    segments = [urllib.parse.unquote(s) for s in path.split("/") if s]
    candidates = []
    for r in routes:
        params = r.match(segments)
        if params is not None:
            candidates.append((r.specificity(), r, params))
    candidates.sort(key=lambda c: c[0])
    for _, r, params in candidates:
        if r.method == method:
            return r, params
    return None, {}


def _pairs_to_maps(pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for k, v in pairs:
        single[k] = v
        multi.setdefault(k, []).append(v)
    return single, multi


def proxy_event(
    route: Route,
    *,
    method: str,
    path: str,
    path_params: dict[str, str],
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The API Gateway REST API (payload version 1.0) Lambda proxy event for one request; ``context`` is
    what the authorizer adds (``identity`` fields, ``authorizer`` claims)."""
    single_headers, multi_headers = _pairs_to_maps(headers)
    single_query, multi_query = _pairs_to_maps(query)
    lower = {k.lower(): v for k, v in headers}
    is_b64 = False  # UTF-8 bodies as text, anything else base64 (the function decodes both alike)
    text: str | None = None
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
    now = _dt.datetime.now(_dt.UTC)
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid4().hex[:6],
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode(),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{route.stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": route.stage,
            "domainPrefix": lower.get("host", "localhost").split(".")[0].split(":")[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": lower.get("x-api-key"),
                "apiKeyId": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": lower.get("user-agent"),
                "user": None,
            },
            "domainName": lower.get("host", "localhost"),
            "apiId": route.api_id,
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }
    for key, value in (context or {}).items():
        if key == "identity":
            event["requestContext"]["identity"].update(value)
        else:
            event["requestContext"][key] = value
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, payload: Any, request_id: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id or str(uuid.uuid4()))]
    if status == 403 and payload is MISSING_TOKEN:
        headers.append(("x-amzn-ErrorType", "MissingAuthenticationTokenException"))
    return HttpResponse(status, headers, json.dumps(payload).encode())


def proxy_response(result: Any, request_id: str) -> HttpResponse:
    """The handler's proxy result -> HTTP; a malformed one is API Gateway's 502."""
    if not isinstance(result, dict) or "statusCode" not in result:
        log.warning("handler returned no statusCode: API Gateway answers 502")
        return _json_response(502, INTERNAL_ERROR, request_id)
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return _json_response(502, INTERNAL_ERROR, request_id)
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        return _json_response(502, INTERNAL_ERROR, request_id)
    for k, vs in multi.items():
        for v in vs if isinstance(vs, list) else [vs]:
            headers.append((str(k), str(v)))
    multi_lower = {k.lower() for k in multi}
    for k, v in single.items():
        if str(k).lower() not in multi_lower:
            headers.append((str(k), str(v)))
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(str(body), validate=False)
        except (binascii.Error, ValueError):
            return _json_response(502, INTERNAL_ERROR, request_id)
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    return HttpResponse(status, headers, data)


class ApiGateway:
    """Routes requests to handlers; :meth:`handle` is transport-free so it can be tested directly."""

    def __init__(self, routes: list[Route], runtime: Runtime, auth: LocalAuth | None = None) -> None:
        self.routes = routes
        self.runtime = runtime
        self.auth = auth
        self.stages = {r.stage for r in routes}

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        route, params = find_route(self.routes, method, path)
        if route is None:
            # Deployed URLs carry the stage (/v1/models/...): accept them too, like the deployed API.
            first, _, rest = path.lstrip("/").partition("/")
            if first in self.stages:
                path = "/" + rest
                route, params = find_route(self.routes, method, path)
        if route is None and method in ("GET", "HEAD"):
            page = static.lookup(split.path or "/")
            if page is not None:  # the pages beside the API (modelsync.local.static), public like S3 sites
                extra = ([("Location", page.location + (f"?{split.query}" if split.query else ""))]
                         if page.location else [])
                return HttpResponse(page.status, [("Content-Type", page.content_type),
                                                  ("Cache-Control", "no-cache"), *extra], page.body)
        if route is None:
            return _json_response(403, MISSING_TOKEN)
        context: dict[str, Any] = {}
        if self.auth is not None:
            denied, context = self.auth.check(route.auth, method, target, headers, body)
            if denied is not None:
                status, payload = denied
                return _json_response(status, MISSING_TOKEN if payload == MISSING_TOKEN else payload)
        event = proxy_event(
            route,
            method=method,
            path=path,
            path_params=params,
            query=query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            context=context,
        )
        request_id = event["requestContext"]["requestId"]
        inv = self.runtime.invoke(
            route.function,
            event,
            trigger=f"Api {method} {route.path}",
            outcome_of=lambda r: str(r.get("statusCode")) if isinstance(r, dict) else "?",
        )
        if not inv.ok:
            return _json_response(502, INTERNAL_ERROR, request_id)
        return proxy_response(inv.result, request_id)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body are written separately; with Nagle, a keep-alive client's delayed ACK
    # would hold every response's body back ~40 ms (bench/local_api.py measured it)
    disable_nagle_algorithm = True
    server_version = "modelsync-local-apigw"
    gateway: ApiGateway  # set on the subclass the server builds

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = list(self.headers.items())
        present = {k.lower() for k, _ in headers}
        # what API Gateway adds in front of the integration
        for name, value in (("X-Forwarded-For", self.client_address[0]),
                            ("X-Forwarded-Port", str(self.connection.getsockname()[1])),
                            ("X-Forwarded-Proto", "http")):
            if name.lower() not in present:
                headers.append((name, value))
        try:
            resp = self.gateway.handle(self.command, self.path, headers, body, self.client_address[0])
        except Exception:
            log.exception("local API gateway failed on %s %s", self.command, self.path)
            resp = _json_response(500, INTERNAL_ERROR)
        self.send_response(resp.status)
        for k, v in resp.headers:
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        self.send_header("Content-Length", "0" if no_body and resp.status != 200 else str(len(resp.body)))
        self.end_headers()
        if not no_body:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api %s - %s", self.address_string(), format % args)


class ApiServer:
    """The HTTP listener (a ``ThreadingHTTPServer`` on its own thread)."""

    def __init__(self, gateway: ApiGateway, host: str = "127.0.0.1", port: int = 3000) -> None:
        handler = type("Handler", (_Handler,), {"gateway": gateway})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="modelsync-local-api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

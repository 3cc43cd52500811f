"""What API Gateway checks before a request reaches a handler, enforced by the local stack when asked.

``modelsync local --auth iam|api-key|cognito`` deploys the template with the matching ``AuthMode`` and
then enforces, per route, exactly what the template declares (:func:`route_auth` reads the API's
``Auth`` and each Api event's ``Auth`` as resolved from template.yaml):

* ``AWS_IAM``: a SigV4 signature made with the stack's credentials (printed on the ready line), checked
  by recomputing it (:func:`modelsync_device.auth.canonical_request`, the device's own signer code).
* the Cognito authorizer: ``Authorization: Bearer <token>``; locally the tokens are HS256 JWTs signed
  with a secret of this stack (``modelsync local token`` issues new ones), expiry checked.
* ``ApiKeyRequired``: the ``x-api-key`` header with the stack's key.

The answers are API Gateway's (403 ``Missing Authentication Token`` / signature mismatch, 401
``Unauthorized`` for the Cognito authorizer, 403 ``Forbidden`` for a missing API key).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelsync_device.auth import canonical_request, parse_authorization, signature

LOCAL_MODES = ("none", "iam", "api-key", "cognito")
AUTH_MODE_PARAMETER = {"iam": "IAM", "api-key": "API_KEY", "cognito": "COGNITO"}  # template's AuthMode
TOKEN_ISSUER = "modelsync-local"
DEFAULT_TOKEN_TTL = 3600
MAX_CLOCK_SKEW = 15 * 60  # SigV4: API Gateway refuses signatures older or newer than 15 minutes

MISSING_TOKEN = (403, {"message": "Missing Authentication Token"})
FORBIDDEN = (403, {"message": "Forbidden"})
UNAUTHORIZED = (401, {"message": "Unauthorized"})


@dataclass(frozen=True)
class RouteAuth:
    """What API Gateway requires on one route: ``authorizer`` "AWS_IAM", "COGNITO" or None (open)."""

    authorizer: str | None = None
    api_key: bool = False


def route_auth(api_auth: Mapping[str, Any] | None, event_auth: Mapping[str, Any] | None) -> RouteAuth:
    """SAM's rule: the event's ``Authorizer`` / ``ApiKeyRequired`` win over the API's ``DefaultAuthorizer``
    / ``ApiKeyRequired``; ``NONE`` means open; a name in the API's ``Authorizers`` with a ``UserPoolArn``
    is a Cognito authorizer."""
    api = dict(api_auth or {})
    ev = dict(event_auth or {})
    name = ev.get("Authorizer", api.get("DefaultAuthorizer"))
    authorizer: str | None
    if name in (None, "NONE"):
        authorizer = None
    elif name == "AWS_IAM":
        authorizer = "AWS_IAM"
    elif "UserPoolArn" in ((api.get("Authorizers") or {}).get(name) or {}):
        authorizer = "COGNITO"
    else:
        raise ValueError(f"authorizer {name!r} is not emulated locally (only AWS_IAM and Cognito user pools)")
    return RouteAuth(authorizer, bool(ev.get("ApiKeyRequired", api.get("ApiKeyRequired", False))))


# -- tokens (the local stand-in for Cognito's JWTs) ------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: str, subject: str = "local-user", ttl: float = DEFAULT_TOKEN_TTL,
                now: float | None = None) -> str:
    """An HS256 JWT for ``subject`` valid ``ttl`` seconds (claims like a Cognito ID token's)."""
    iat = int(now if now is not None else time.time())
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": subject, "cognito:username": subject, "iss": TOKEN_ISSUER, "token_use": "id",
              "iat": iat, "exp": iat + int(ttl)}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def verify_token(secret: str, token: str, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a token this stack issued and that has not expired, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    want = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(want, _unb64url(parts[2])):
            return None
        header, claims = json.loads(_unb64url(parts[0])), json.loads(_unb64url(parts[1]))
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= (now if now is not None else time.time()):
        return None
    return claims


# -- the stack's secrets and the checks ------------------------------------------------------------

@dataclass
class LocalAuth:
    """One stack's mode and secrets; :meth:`check` is what API Gateway does before the integration."""

    mode: str
    region: str = "us-east-1"
    access_key_id: str = field(default_factory=lambda: "AKIALOCAL" + secrets.token_hex(6).upper())
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        if self.mode not in LOCAL_MODES:
            raise ValueError(f"--auth must be one of {', '.join(LOCAL_MODES)}")

    @property
    def enforced(self) -> bool:
        return self.mode != "none"

    def ready_info(self) -> dict[str, Any]:
        """For the ready line: operators always need IAM credentials (alias moves are IAM-only)."""
        if not self.enforced:
            return {"auth": "none"}
        info: dict[str, Any] = {"auth": self.mode, "credentials": {
            "access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}}
        if self.mode == "api-key":
            info["api_key"] = self.api_key
        if self.mode == "cognito":
            info["token"] = issue_token(self.token_secret)
        return info

    def check(self, rule: RouteAuth, method: str, target: str, headers: list[tuple[str, str]], body: bytes
              ) -> tuple[tuple[int, dict[str, str]] | None, dict[str, Any]]:
        """(None, what the proxy event's requestContext gets) if allowed, else ((status, body), {})."""
        if not self.enforced:
            return None, {}
        lower: dict[str, str] = {}
        for k, v in headers:
            key = k.lower()
            lower[key] = f"{lower[key]},{v}" if key in lower else v
        context: dict[str, Any] = {}
        if rule.authorizer == "AWS_IAM":
            denied = self._check_sigv4(method, target, lower, body)
            if denied:
                return denied, {}
            context["identity"] = {"accessKey": self.access_key_id, "caller": self.access_key_id,
                                   "user": self.access_key_id,
                                   "userArn": "arn:aws:iam::123456789012:user/modelsync-local"}
        elif rule.authorizer == "COGNITO":
            value = lower.get("authorization", "")
            claims = verify_token(self.token_secret, value.removeprefix("Bearer ").strip()) if value else None
            if claims is None:
                return UNAUTHORIZED, {}
            context["authorizer"] = {"claims": {k: str(v) for k, v in claims.items()}}
        if rule.api_key:
            if not hmac.compare_digest(lower.get("x-api-key", ""), self.api_key):
                return FORBIDDEN, {}
            context.setdefault("identity", {})["apiKey"] = self.api_key
        return None, context

    def _check_sigv4(self, method: str, target: str, headers: Mapping[str, str], body: bytes
                     ) -> tuple[int, dict[str, str]] | None:
        value = headers.get("authorization")
        if not value:
            return MISSING_TOKEN
        parts = parse_authorization(value)
        amz_date = headers.get("x-amz-date", "")
        if parts is None or not amz_date:
            return 403, {"message": "Authorization header requires 'Credential', 'Signature', "
                                    "'SignedHeaders' and an X-Amz-Date header."}
        if not hmac.compare_digest(parts["key"], self.access_key_id):
            return 403, {"message": "The security token included in the request is invalid."}
        try:
            when = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.UTC)
        except ValueError:
            return 403, {"message": "Invalid X-Amz-Date"}
        if abs(time.time() - when.timestamp()) > MAX_CLOCK_SKEW or parts["date"] != amz_date[:8]:
            return 403, {"message": "Signature expired"}
        if parts["region"] != self.region or parts["service"] != "execute-api":
            return 403, {"message": f"Credential should be scoped to a valid region ({self.region}) and "
                                    "service execute-api."}
        signed = parts["signed"].split(";")
        if "host" not in signed or signed != sorted(signed):
            return 403, {"message": "'Host' must be a signed header"}
        split = urllib.parse.urlsplit(target)
        canonical = canonical_request(method, split.path or "/", split.query, headers, signed,
                                      hashlib.sha256(body).hexdigest())
        want = signature(self.secret_access_key, amz_date, parts["region"], parts["service"], canonical)
        if not hmac.compare_digest(want, parts["sig"]):
            return 403, {"message": "The request signature we calculated does not match the signature you "
                                    "provided. Check your AWS Secret Access Key and signing method."}
        return None


# -- the stack's auth file: `modelsync local token` and the operator commands find the stack by its API --

def state_path(api_url: str) -> str:
    """Where a running local stack keeps its ready info (mode 0600, this user's temp folder)."""
    parts = urllib.parse.urlsplit(api_url)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"modelsync-local-{uid}",
                        f"{parts.hostname or 'localhost'}_{parts.port or 80}.json")


def write_state(api_url: str, info: Mapping[str, Any], auth: LocalAuth) -> str:
    path = state_path(api_url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({**info, "token_secret": auth.token_secret}, f)
    os.replace(path + ".tmp", path)
    return path


def read_state(api_url: str) -> dict[str, Any] | None:
    try:
        with open(state_path(api_url), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_state(api_url: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(state_path(api_url))

"""Authenticate device and operator requests for every ``AuthMode`` of the deployed API, stdlib only.

* IAM: AWS Signature Version 4 (``hmac``/``hashlib``), credentials found where AWS SDKs look them up -
  environment (with a session token), the shared credentials file and profile, the container/IoT
  credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` + its authorization token) - and fetched
  again before they expire. :func:`canonical_request` is shared with the local API Gateway, which checks
  signatures by recomputing them.
* API_KEY: the ``x-api-key`` header.
* COGNITO: ``Authorization: Bearer <token>`` from a file or a command, read again after a 401.

:class:`AuthOpener` wraps an opener so every request to the API is authenticated; presigned document
URLs (their own authentication) are left alone.
"""

from __future__ import annotations

import configparser
import datetime as _dt
import hashlib
import hmac
import json
import os
import posixpath
import re
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .transport import NETWORK_ERRORS, Opener, default_opener, read_capped

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
AUTH_MODES = ("none", "iam", "api-key", "token")
# headers never signed (botocore's list): proxies may change them
UNSIGNED_HEADERS = frozenset({"expect", "user-agent", "x-amzn-trace-id", "authorization"})
REFRESH_MARGIN = 300.0  # fetch credentials again this many seconds before they expire
_UNRESERVED = "-_.~"


class AuthError(Exception):
    """Credentials or a token cannot be obtained (a configuration problem, not "offline")."""


# -- SigV4 ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: float | None = None  # epoch seconds; None: does not expire


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_path(path: str) -> str:
    """Dot segments removed, then URI-encoded once more (for every service but S3, as botocore does)."""
    path = path or "/"
    normalized = posixpath.normpath(path) if path != "/" else "/"
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return urllib.parse.quote(normalized, safe="/~")


def canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(key), safe=_UNRESERVED),
                      urllib.parse.quote(urllib.parse.unquote(value), safe=_UNRESERVED)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _header_value(value: str) -> str:
    return " ".join(value.split())


def canonical_request(method: str, url_path: str, query: str, headers: Mapping[str, str],
                      signed_headers: Iterable[str], payload_hash: str) -> str:
    """The SigV4 canonical request. ``headers`` keys lower case; ``signed_headers`` sorted lower names."""
    names = list(signed_headers)
    lines = "".join(f"{n}:{_header_value(headers.get(n, ''))}\n" for n in names)
    return "\n".join([method.upper(), canonical_path(url_path), canonical_query(query), lines,
                      ";".join(names), payload_hash])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, _sha256_hex(canonical.encode())])
    return hmac.new(signing_key(secret, amz_date[:8], region, service), to_sign.encode(),
                    hashlib.sha256).hexdigest()


def host_of(url: str) -> str:
    """The Host header value for ``url`` (default ports left out, as HTTP clients send it)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None, credentials: Credentials,
         region: str, service: str = SERVICE, now: _dt.datetime | None = None) -> dict[str, str]:
    """The headers to add so the request carries a SigV4 signature (``Host``, ``X-Amz-Date``,
    ``X-Amz-Security-Token`` with temporary credentials, ``Authorization``)."""
    when = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    added = {"X-Amz-Date": amz_date}
    if not any(k.lower() == "host" for k in headers):
        added["Host"] = host_of(url)
    if credentials.session_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    lower = {k.lower(): v for k, v in {**headers, **added}.items()}
    names = sorted(n for n in lower if n not in UNSIGNED_HEADERS)
    parts = urllib.parse.urlsplit(url)
    canonical = canonical_request(method, parts.path, parts.query, lower, names, _sha256_hex(body or b""))
    sig = signature(credentials.secret_access_key, amz_date, region, service, canonical)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    added["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return added


_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)"
    r"/(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$")


def parse_authorization(value: str) -> dict[str, str] | None:
    """The parts of a SigV4 ``Authorization`` header, or None if it is not one."""
    m = _AUTHORIZATION.match(value.strip())
    return m.groupdict() if m else None


# -- where credentials come from -------------------------------------------------------------------

def _parse_expiration(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.timestamp()


def env_credentials(environ: Mapping[str, str]) -> Credentials | None:
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)
    return None


def shared_file_credentials(environ: Mapping[str, str], profile: str | None) -> Credentials | None:
    path = environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(os.path.expanduser("~"), ".aws",
                                                                       "credentials")
    name = profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        if profile:
            raise AuthError(f"profile {profile!r}: no shared credentials file at {path}") from None
        return None
    except (OSError, configparser.Error) as exc:
        raise AuthError(f"cannot read the shared credentials file {path}: {exc}") from None
    if not parser.has_section(name):
        if profile:
            raise AuthError(f"profile {profile!r} is not in {path}")
        return None
    sec = parser[name]
    key, secret = sec.get("aws_access_key_id"), sec.get("aws_secret_access_key")
    if not key or not secret:
        raise AuthError(f"profile {name!r} in {path} has no aws_access_key_id / aws_secret_access_key")
    return Credentials(key.strip(), secret.strip(), (sec.get("aws_session_token") or "").strip() or None)


def container_credentials(environ: Mapping[str, str], opener: Opener | None = None,
                          timeout: float = 5.0) -> Credentials | None:
    """The ECS/EKS/IoT-style credentials endpoint: ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (or the
    relative URI on 169.254.170.2), with ``AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)`` as Authorization."""
    url = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not url and environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        url = "http://169.254.170.2" + environ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
    if not url:
        return None
    headers = {"Accept": "application/json"}
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise AuthError(f"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {exc}") from None
    if token:
        headers["Authorization"] = token
    try:
        with (opener or default_opener()).open(urllib.request.Request(url, headers=headers),
                                               timeout=timeout) as resp:
            data = json.loads(read_capped(resp, 64 * 1024))
    except (*NETWORK_ERRORS, ValueError) as exc:
        raise AuthError(f"credentials endpoint {url}: {exc}") from None
    try:
        return Credentials(data["AccessKeyId"], data["SecretAccessKey"], data.get("Token"),
                           _parse_expiration(data.get("Expiration")))
    except (KeyError, TypeError):
        raise AuthError(f"credentials endpoint {url} answered without AccessKeyId/SecretAccessKey") from None


class CredentialChain:
    """The SDK lookup order (environment, shared file/profile, container endpoint), cached and fetched
    again ``refresh_margin`` seconds before the credentials expire. With ``profile``, only that profile."""

    def __init__(self, profile: str | None = None, environ: Mapping[str, str] | None = None,
                 opener: Opener | None = None, refresh_margin: float = REFRESH_MARGIN,
                 clock: Callable[[], float] = time.time) -> None:
        self.profile = profile
        self.environ = environ if environ is not None else os.environ
        self.opener = opener
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._cached: Credentials | None = None
        self._lock = threading.Lock()

    def _lookup(self) -> Credentials:
        if self.profile:
            creds = shared_file_credentials(self.environ, self.profile)
        else:
            creds = (env_credentials(self.environ) or shared_file_credentials(self.environ, None)
                     or container_credentials(self.environ, self.opener))
        if creds is None:
            raise AuthError("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in "
                            "~/.aws/credentials, or AWS_CONTAINER_CREDENTIALS_FULL_URI")
        return creds

    def get(self, force: bool = False) -> Credentials:
        with self._lock:
            c = self._cached
            stale = c is None or (c.expiration is not None
                                  and c.expiration - self.clock() < self.refresh_margin)
            if force or stale:
                self._cached = c = self._lookup()
            assert c is not None
            return c


def region_of(api_url: str, environ: Mapping[str, str] | None = None) -> str:
    """The API's region: from an ``execute-api`` host name, else AWS_REGION / AWS_DEFAULT_REGION."""
    env = environ if environ is not None else os.environ
    m = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urllib.parse.urlsplit(api_url).netloc)
    if m:
        return m.group(1)
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


# -- the modes --------------------------------------------------------------------------------------

class Auth:
    """No authentication: the base of the others."""

    mode = "none"

    def headers(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
                ) -> dict[str, str]:
        return {}

    def refresh(self) -> bool:
        """Called after a 401: True if new credentials were obtained (then the request is retried once)."""
        return False


class IamAuth(Auth):
    mode = "iam"

    def __init__(self, credentials: CredentialChain | Credentials, region: str, service: str = SERVICE,
                 api_key: str | None = None) -> None:
        self.credentials = credentials
        self.region, self.service = region, service
        self.api_key = api_key.strip() if api_key else None  # AuthMode=API_KEY: the read routes want both

    def _creds(self, force: bool = False) -> Credentials:
        c = self.credentials
        return c if isinstance(c, Credentials) else c.get(force)

    def headers(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
                ) -> dict[str, str]:
        extra = {"x-api-key": self.api_key} if self.api_key else {}
        return {**extra, **sign(method, url, {**headers, **extra}, body, self._creds(), self.region,
                                 self.service)}

    def refresh(self) -> bool:
        if isinstance(self.credentials, Credentials):
            return False
        before = self._creds()
        return self._creds(force=True) != before


class ApiKeyAuth(Auth):
    mode = "api-key"

    def __init__(self, key: str) -> None:
        if not key.strip():
            raise AuthError("the API key is empty")
        self.key = key.strip()

    def headers(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
                ) -> dict[str, str]:
        return {"x-api-key": self.key}


class TokenAuth(Auth):
    """A bearer token (a Cognito ID/access token) read from ``token_file`` or printed by ``command``;
    read again when the API answers 401 (expired)."""

    mode = "token"

    def __init__(self, token_file: str | None = None, command: str | None = None, timeout: float = 30.0
                 ) -> None:
        if bool(token_file) == bool(command):
            raise AuthError("token auth needs exactly one of a token file or a token command")
        self.token_file, self.command, self.timeout = token_file, command, timeout
        self._token: str | None = None

    def _read(self) -> str:
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as exc:
                raise AuthError(f"cannot read the token file: {exc}") from None
        else:
            assert self.command is not None
            try:
                proc = subprocess.run(shlex.split(self.command), capture_output=True, text=True,
                                      timeout=self.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise AuthError(f"token command failed: {exc}") from None
            if proc.returncode != 0:
                raise AuthError(f"token command exited {proc.returncode}: {proc.stderr.strip()[:300]}")
            token = proc.stdout.strip()
        if not token:
            raise AuthError("the token is empty")
        return token.removeprefix("Bearer ").strip()

    def headers(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
                ) -> dict[str, str]:
        if self._token is None:
            self._token = self._read()
        return {"Authorization": f"Bearer {self._token}"}

    def refresh(self) -> bool:
        old, self._token = self._token, self._read()
        return self._token != old


class AuthOpener:
    """An opener that authenticates requests to ``api_url`` (and only those: presigned document URLs
    carry their own authentication) and, after a 401, retries once if :meth:`Auth.refresh` got new
    credentials."""

    def __init__(self, api_url: str, auth: Auth, opener: Opener | None = None) -> None:
        parts = urllib.parse.urlsplit(api_url)
        self._scope = (parts.scheme, parts.netloc, parts.path.rstrip("/"))
        self.auth = auth
        self.opener = opener if opener is not None else default_opener()

    def _covers(self, url: str) -> bool:
        p = urllib.parse.urlsplit(url)
        scheme, netloc, path = self._scope
        return (p.scheme, p.netloc) == (scheme, netloc) and (p.path == path or p.path.startswith(path + "/"))

    def _authed(self, req: urllib.request.Request) -> urllib.request.Request:
        method = req.get_method()
        body = req.data if isinstance(req.data, bytes) else None
        current = dict(req.header_items())
        out = urllib.request.Request(req.full_url, data=req.data, headers=current, method=method)
        for k, v in self.auth.headers(method, req.full_url, current, body).items():
            out.add_header(k, v)
        return out

    def open(self, req: urllib.request.Request | str, timeout: float | None = None) -> Any:
        if isinstance(req, str):
            req = urllib.request.Request(req)
        if not self._covers(req.full_url) or self.auth.mode == "none":
            return self.opener.open(req, timeout=timeout)
        try:
            return self.opener.open(self._authed(req), timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 401 or not self.auth.refresh():
                raise
            exc.close()
        return self.opener.open(self._authed(req), timeout=timeout)


def make_auth(mode: str, api_url: str, *, profile: str | None = None, api_key: str | None = None,
              api_key_file: str | None = None, token_file: str | None = None,
              token_command: str | None = None, region: str | None = None,
              environ: Mapping[str, str] | None = None) -> Auth:
    """The :class:`Auth` for a CLI ``--auth`` choice (``none``, ``iam``, ``api-key``, ``token``)."""
    env = environ if environ is not None else os.environ
    key = api_key
    if api_key_file:
        try:
            with open(api_key_file, encoding="utf-8") as f:
                key = f.read()
        except OSError as exc:
            raise AuthError(f"cannot read the API key file: {exc}") from None
    if mode == "none":
        return Auth()
    if mode == "iam":  # with an API key too when given (AuthMode=API_KEY: operators need both)
        chain = CredentialChain(profile, env)
        chain.get()  # fail now, as a configuration error, if there are none
        return IamAuth(chain, region or region_of(api_url, env), api_key=key)
    if mode == "api-key":
        key = key or env.get("MODELSYNC_API_KEY")
        if not key:
            raise AuthError("api-key auth needs --api-key-file (or MODELSYNC_API_KEY)")
        return ApiKeyAuth(key)
    if mode in ("token", "cognito"):
        token_file = token_file or env.get("MODELSYNC_TOKEN_FILE")
        return TokenAuth(token_file if not token_command else None, token_command)
    raise AuthError(f"unknown auth mode {mode!r} (choose from {', '.join(AUTH_MODES)})")


def add_auth_arguments(parser: Any) -> None:
    """``--auth``, ``--profile``, ``--api-key-file``, ``--token-file``, ``--token-command``, ``--region``:
    the same flags for the device CLI and the operator commands."""
    g = parser.add_argument_group("authentication (the API's AuthMode; docs/devices.md)")
    g.add_argument("--auth", choices=AUTH_MODES, default="none",
                   help="none; iam (SigV4: env, shared credentials file, container endpoint); api-key "
                        "(x-api-key); token (Cognito bearer token from --token-file or --token-command)")
    g.add_argument("--profile", help="iam: this profile of the shared credentials file")
    g.add_argument("--region", help="iam: the API's region (default: from its URL, else AWS_REGION)")
    g.add_argument("--api-key-file", metavar="F",
                   help="api-key: file holding the key (or MODELSYNC_API_KEY); with iam, sent as well")
    g.add_argument("--token-file", metavar="F", help="token: file holding the bearer token")
    g.add_argument("--token-command", metavar="CMD", help="token: command printing a bearer token")


def auth_from_args(args: Any, api_url: str) -> Auth:
    return make_auth(args.auth, api_url, profile=args.profile, api_key_file=args.api_key_file,
                     token_file=args.token_file, token_command=args.token_command, region=args.region)


def is_auth_failure(code: int) -> bool:
    return code in (401, 403)

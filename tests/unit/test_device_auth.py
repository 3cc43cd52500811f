"""The device's standard-library authentication: SigV4 against botocore's signer, the credential chain
(environment, shared file + profile, container endpoint with its token, refreshed before expiry), API
keys, bearer tokens refreshed on 401, and what a sync reports when the API refuses the credentials."""

from __future__ import annotations

import datetime as _dt
import http.server
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from modelsync_device import auth
from modelsync_device.auth import (
    ApiKeyAuth,
    AuthError,
    AuthOpener,
    CredentialChain,
    Credentials,
    IamAuth,
    TokenAuth,
    canonical_request,
    parse_authorization,
    sign,
)
from modelsync_device.client import sync
from modelsync_device.store import ModelStore

botocore_auth = pytest.importorskip("botocore.auth")
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials as BotoCredentials  # noqa: E402

NOW = _dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=_dt.UTC)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP = Credentials("ASIATEMP", "c2VjcmV0/+temp", "FwoGZXIvYXdzEJr//////////wEaDtoken+/=")

REQUESTS = [  # (method, url, headers, body)
    ("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models", {}, b""),
    ("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/manifest?alias=production",
     {"Accept": "application/json", "X-Device-Id": "dev-42"}, b""),
    ("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/manifest?version=3",
     {"If-None-Match": '"abc"', "User-Agent": "device/1"}, b""),
    ("GET", "http://127.0.0.1:3000/models/iris/telemetry?since=2026-01-01T00%3A00%3A00Z&device_id=a",
     {}, b""),
    ("POST", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/telemetry",
     {"Content-Type": "application/json", "X-Device-Id": "dev  with   spaces"}, b'{"batches": []}'),
    ("PUT", "https://api.example.com:8443/v1/models/iris/aliases/production",
     {"Content-Type": "application/json"}, json.dumps({"version": 2}).encode()),
    ("POST", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/aliases/prod/promote", {},
     b""),
    ("DELETE", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/aliases/x", {}, b""),
    ("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/a.b/./manifest?b=2&a=1&a=0", {},
     b""),
    ("POST", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/models/iris/predict",
     {"content-type": "application/json; charset=utf-8"}, "{\"instances\": [[1, \"é\"]]}".encode()),
]


def _botocore(method: str, url: str, headers: dict[str, str], body: bytes, creds: Credentials,
              region: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    boto = BotoCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    botocore_auth.SigV4Auth(boto, "execute-api", region).add_auth(req)
    return dict(req.headers.items())


@pytest.mark.parametrize("creds", [CREDS, TEMP], ids=["long-term", "session-token"])
@pytest.mark.parametrize("method,url,headers,body", REQUESTS)
def test_sigv4_matches_botocore(method: str, url: str, headers: dict[str, str], body: bytes,
                                creds: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    region = auth.region_of(url, {"AWS_REGION": "us-east-2"})
    ours = sign(method, url, headers, body, creds, region, now=NOW)
    theirs = _botocore(method, url, headers, body, creds, region, monkeypatch)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_signature_changes_with_everything_signed() -> None:
    base = ("GET", "https://h.example/v1/models/iris/manifest?alias=a", {"X-Device-Id": "d"}, b"")
    ref = sign(*base, CREDS, "eu-west-1", now=NOW)["Authorization"]
    variants = [
        ("POST", *base[1:]),
        (base[0], base[1].replace("iris", "wine"), *base[2:]),
        (base[0], base[1].replace("alias=a", "alias=b"), *base[2:]),
        (*base[:2], {"X-Device-Id": "e"}, b""),
        (*base[:3], b"x"),
    ]
    for v in variants:
        assert sign(*v, CREDS, "eu-west-1", now=NOW)["Authorization"] != ref
    assert sign(*base, CREDS, "us-east-1", now=NOW)["Authorization"] != ref
    other = Credentials(CREDS.access_key_id, CREDS.secret_access_key + "x")
    assert sign(*base, other, "eu-west-1", now=NOW)["Authorization"] != ref
    parsed = parse_authorization(ref)
    assert parsed is not None and parsed["key"] == "AKIDEXAMPLE" and parsed["region"] == "eu-west-1"
    assert parsed["signed"] == "host;x-amz-date;x-device-id"
    assert parse_authorization("Bearer abc") is None


def test_canonical_request_shape() -> None:
    text = canonical_request("get", "/v1/a b", "z=1&a=%2F", {"host": "h", "x-amz-date": "d"},
                             ["host", "x-amz-date"], "e3b0")
    assert text.split("\n") == ["GET", "/v1/a%20b", "a=%2F&z=1", "host:h", "x-amz-date:d", "",
                                "host;x-amz-date", "e3b0"]


# -- credentials ---------------------------------------------------------------------------------

def test_environment_then_shared_file_and_profile(tmp_path: Any) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok"}
    assert CredentialChain(environ=env).get() == Credentials("AKENV", "s", "tok")
    f = tmp_path / "credentials"
    f.write_text("[default]\naws_access_key_id = AKDEF\naws_secret_access_key = d\n\n"
                 "[device]\naws_access_key_id=AKDEV\naws_secret_access_key=v\naws_session_token=t2\n")
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(f)}
    assert CredentialChain(environ=files).get() == Credentials("AKDEF", "d")
    with_profile = CredentialChain(environ={**files, "AWS_PROFILE": "device"}).get()
    assert with_profile == Credentials("AKDEV", "v", "t2")
    # an explicit profile reads the file even when the environment has keys
    assert CredentialChain("device", environ={**env, **files}).get().access_key_id == "AKDEV"
    with pytest.raises(AuthError, match="'nope' is not in"):
        CredentialChain("nope", environ=files).get()
    with pytest.raises(AuthError, match="no AWS credentials"):
        CredentialChain(environ={"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}).get()


class _CredentialsEndpoint:
    """A container credentials endpoint: checks the Authorization token, hands out expiring keys."""

    def __init__(self, token: str, lifetime: float) -> None:
        self.token, self.lifetime, self.calls, self.seen = token, lifetime, 0, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != outer.token:
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.calls += 1
                exp = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=outer.lifetime)
                body = json.dumps({"AccessKeyId": f"ASIA{outer.calls}", "SecretAccessKey": "s",
                                   "Token": f"t{outer.calls}",
                                   "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/creds"


@pytest.fixture
def endpoint() -> Iterator[_CredentialsEndpoint]:
    ep = _CredentialsEndpoint("secret-token", lifetime=3600)
    yield ep
    ep.server.shutdown()


def test_container_endpoint_with_token_and_token_file(endpoint: _CredentialsEndpoint, tmp_path: Any) -> None:
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    with pytest.raises(AuthError, match="credentials endpoint"):
        CredentialChain(environ=env).get()  # no token: 401
    c = CredentialChain(environ={**env, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "secret-token"}).get()
    assert c.access_key_id == "ASIA1" and c.session_token == "t1" and c.expiration is not None
    token_file = tmp_path / "token"
    token_file.write_text("secret-token\n")
    c = CredentialChain(environ={**env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file)}).get()
    assert c.access_key_id == "ASIA2"
    assert endpoint.seen == [None, "secret-token", "secret-token"]


def test_credentials_refreshed_before_expiry(endpoint: _CredentialsEndpoint, tmp_path: Any) -> None:
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN":
           "secret-token", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    clock = [_dt.datetime.now(_dt.UTC).timestamp()]
    chain = CredentialChain(environ=env, clock=lambda: clock[0], refresh_margin=300)
    assert chain.get().access_key_id == "ASIA1"
    clock[0] += 3000  # 10 minutes left: still good
    assert chain.get().access_key_id == "ASIA1"
    clock[0] += 400  # less than the margin left: fetched again
    assert chain.get().access_key_id == "ASIA2"
    assert endpoint.calls == 2


# -- the modes on the wire -----------------------------------------------------------------------

class _Api:
    """Answers 401 unless the request carries what ``accept`` wants; records the headers it saw."""

    def __init__(self, accept: Any) -> None:
        self.accept, self.seen = accept, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append((self.command, self.path, headers))
                ok = outer.accept(headers)
                body = json.dumps({"ok": True} if ok else {"message": "Unauthorized"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def _get(opener: AuthOpener, url: str) -> int:
    try:
        with opener.open(urllib.request.Request(url), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_key_header_only_to_the_api(tmp_path: Any) -> None:
    api = _Api(lambda h: h.get("x-api-key") == "k-123")
    opener = AuthOpener(api.url, ApiKeyAuth("k-123\n"))
    assert _get(opener, api.url + "/models") == 200
    other = api.url.replace("/v1", "/elsewhere")  # a presigned document URL: never gets the key
    assert _get(opener, other) == 401
    assert "x-api-key" not in api.seen[-1][2]
    api.server.shutdown()


def test_token_read_again_after_401(tmp_path: Any) -> None:
    good = {"token": "t-1"}
    api = _Api(lambda h: h.get("authorization") == f"Bearer {good['token']}")
    token_file = tmp_path / "token"
    token_file.write_text("t-1")
    opener = AuthOpener(api.url, TokenAuth(token_file=str(token_file)))
    assert _get(opener, api.url + "/models") == 200
    good["token"] = "t-2"  # the old token expired; the app wrote a new one
    token_file.write_text("t-2")
    assert _get(opener, api.url + "/models") == 200
    assert [h.get("authorization") for _, _, h in api.seen] == ["Bearer t-1", "Bearer t-1", "Bearer t-2"]
    cmd = TokenAuth(command=f"{sys.executable} -c \"print('t-2')\"")
    assert _get(AuthOpener(api.url, cmd), api.url + "/models") == 200
    with pytest.raises(AuthError):
        TokenAuth(command=f"{sys.executable} -c \"raise SystemExit(3)\"").headers("GET", api.url, {}, None)
    api.server.shutdown()


def test_iam_requests_carry_a_signature_the_server_can_recompute() -> None:
    def verify(h: dict[str, str]) -> bool:
        parts = parse_authorization(h.get("authorization", ""))
        return parts is not None and parts["key"] == CREDS.access_key_id
    api = _Api(verify)
    opener = AuthOpener(api.url, IamAuth(CREDS, "us-east-1"))
    assert _get(opener, api.url + "/models/iris/manifest?alias=latest") == 200
    method, path, headers = api.seen[-1]
    parts = parse_authorization(headers["authorization"])
    assert parts is not None
    signed = parts["signed"].split(";")
    path_only, _, query = path.partition("?")
    canonical = canonical_request(method, path_only, query, headers, signed, auth._sha256_hex(b""))
    assert auth.signature(CREDS.secret_access_key, headers["x-amz-date"], "us-east-1", "execute-api",
                          canonical) == parts["sig"]
    api.server.shutdown()


def test_sync_reports_unauthorized_and_keeps_the_model(tmp_path: Any) -> None:
    api = _Api(lambda h: False)
    store = ModelStore(tmp_path / "store")
    result = sync(api.url, "iris", store, http=AuthOpener(api.url, ApiKeyAuth("wrong")))
    assert result.status == "unauthorized" and not result.ok and result.version is None
    assert "authentication failed" in (result.reason or "") and "401" in (result.reason or "")
    failing = TokenAuth(command=f"{sys.executable} -c \"raise SystemExit(5)\"")
    result = sync(api.url, "iris", store, http=AuthOpener(api.url, failing))
    assert result.status == "unauthorized" and "token command exited 5" in (result.reason or "")
    api.server.shutdown()


def test_make_auth_configuration_errors(tmp_path: Any) -> None:
    with pytest.raises(AuthError, match="api-key auth needs"):
        auth.make_auth("api-key", "http://x", environ={})
    with pytest.raises(AuthError, match="exactly one"):
        auth.make_auth("token", "http://x", environ={})
    with pytest.raises(AuthError, match="no AWS credentials"):
        auth.make_auth("iam", "http://x", environ={"AWS_SHARED_CREDENTIALS_FILE": os.devnull + "x"})
    key_file = tmp_path / "key"
    key_file.write_text("abc\n")
    made = auth.make_auth("api-key", "http://x", api_key_file=str(key_file), environ={})
    assert isinstance(made, ApiKeyAuth) and made.key == "abc"
    assert auth.region_of("https://a1.execute-api.ap-south-1.amazonaws.com/v1", {}) == "ap-south-1"
    both = auth.make_auth("iam", "http://x", api_key_file=str(key_file),
                          environ={"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "s"})
    sent = both.headers("GET", "http://x/models", {}, None)
    assert sent["x-api-key"] == "abc" and "x-api-key" in sent["Authorization"]  # signed, and sent

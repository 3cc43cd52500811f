"""The local API Gateway's auth: per-route rules read from template.yaml, SigV4 checked by recomputing the
signature the device's signer made, local Cognito-style tokens with expiry, API keys."""

from __future__ import annotations

import datetime as _dt
import time

import pytest

from modelsync import template as tpl
from modelsync.local.auth import (
    FORBIDDEN,
    MISSING_TOKEN,
    UNAUTHORIZED,
    LocalAuth,
    RouteAuth,
    issue_token,
    route_auth,
    verify_token,
)
from modelsync.local.resources import StackNames, function_specs
from modelsync.local.wiring import api_routes
from modelsync_device.auth import Credentials, sign

T = tpl.load()
API = "http://127.0.0.1:3000"


def _rules(mode: str) -> dict[tuple[str, str], RouteAuth]:
    """The local API Gateway's route table (as `modelsync local` builds it) for AuthMode=mode."""
    names = StackNames.local(T, region="us-east-1", endpoint=None, parameters={"AuthMode": mode})
    assert T.path is not None
    routes = api_routes(function_specs(names, T.path.parent), names)
    return {(r.method, r.path): r.auth for r in routes}


@pytest.mark.parametrize("mode,default", [("IAM", RouteAuth("AWS_IAM")), ("COGNITO", RouteAuth("COGNITO")),
                                          ("API_KEY", RouteAuth(None, True))])
def test_route_rules_follow_the_template(mode: str, default: RouteAuth) -> None:
    rules = _rules(mode)
    events = T.function_events("ScoreFunction", "Api")
    r = tpl.Resolver(T, parameters={"AuthMode": mode})
    for ev in events.values():
        p = ev["Properties"]
        declared = r.resolve(p.get("Auth")) or {}
        rule = rules[(p["Method"], p["Path"])]
        if declared.get("Authorizer") == "NONE" or p["Path"].startswith("/v2/health"):
            assert rule == RouteAuth(None, False), p  # open in every mode
        elif declared.get("Authorizer") == "AWS_IAM":
            assert rule == RouteAuth("AWS_IAM", False), p  # operator routes: IAM only, in every mode
        else:
            assert rule == default, p
    assert route_auth({}, None) == RouteAuth(None, False)
    with pytest.raises(ValueError, match="not emulated"):
        route_auth({"DefaultAuthorizer": "LambdaAuth", "Authorizers": {"LambdaAuth": {"FunctionArn": "x"}}},
                   None)


def _signed(auth: LocalAuth, method: str, target: str, body: bytes = b"", creds: Credentials | None = None,
            now: _dt.datetime | None = None) -> list[tuple[str, str]]:
    c = creds or Credentials(auth.access_key_id, auth.secret_access_key)
    headers = {"Content-Type": "application/json", "X-Device-Id": "dev-1"}
    return list({**headers, **sign(method, API + target, headers, body, c, "us-east-1", now=now)}.items())


def test_sigv4_is_checked_by_recomputing_it() -> None:
    auth = LocalAuth("iam")
    iam = RouteAuth("AWS_IAM")
    target = "/models/iris/manifest?alias=latest"
    ok, context = auth.check(iam, "GET", target, _signed(auth, "GET", target), b"")
    assert ok is None and context["identity"]["accessKey"] == auth.access_key_id
    body = b'{"version": 2}'
    put = "/models/iris/aliases/production"
    assert auth.check(iam, "PUT", put, _signed(auth, "PUT", put, body), body)[0] is None
    assert auth.check(iam, "GET", target, [], b"")[0] == MISSING_TOKEN
    denied = {
        "other path": auth.check(iam, "GET", "/models/wine/manifest?alias=latest",
                                 _signed(auth, "GET", target), b"")[0],
        "other query": auth.check(iam, "GET", "/models/iris/manifest?alias=prod",
                                  _signed(auth, "GET", target), b"")[0],
        "other body": auth.check(iam, "PUT", put, _signed(auth, "PUT", put, body), b'{"version": 3}')[0],
        "other method": auth.check(iam, "DELETE", put, _signed(auth, "PUT", put, body), body)[0],
        "wrong secret": auth.check(iam, "GET", target, _signed(
            auth, "GET", target, creds=Credentials(auth.access_key_id, "nope")), b"")[0],
        "unknown key": auth.check(iam, "GET", target, _signed(
            auth, "GET", target, creds=Credentials("AKIAOTHER", auth.secret_access_key)), b"")[0],
        "old signature": auth.check(iam, "GET", target, _signed(
            auth, "GET", target, now=_dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=20)), b"")[0],
    }
    for what, answer in denied.items():
        assert answer is not None and answer[0] == 403, what
    assert "does not match" in denied["other body"][1]["message"]  # type: ignore[index]
    # not enforced: anything goes (modelsync local without --auth)
    assert LocalAuth("none").check(iam, "GET", target, [], b"") == (None, {})


def test_tokens_expire_and_are_bound_to_the_stack() -> None:
    auth = LocalAuth("cognito")
    token = issue_token(auth.token_secret, "kiosk", ttl=60)
    claims = verify_token(auth.token_secret, token)
    assert claims is not None and claims["sub"] == "kiosk" and claims["token_use"] == "id"
    assert verify_token(auth.token_secret, token, now=time.time() + 61) is None  # expired
    assert verify_token("another stack", token) is None
    header, payload, sig = token.split(".")
    assert verify_token(auth.token_secret, f"{header}.{payload}x.{sig}") is None
    assert verify_token(auth.token_secret, "not-a-token") is None
    cognito = RouteAuth("COGNITO")
    ok, context = auth.check(cognito, "GET", "/models", [("Authorization", f"Bearer {token}")], b"")
    assert ok is None and context["authorizer"]["claims"]["cognito:username"] == "kiosk"
    assert auth.check(cognito, "GET", "/models", [], b"")[0] == UNAUTHORIZED
    expired = issue_token(auth.token_secret, ttl=-1)
    bearer = [("Authorization", f"Bearer {expired}")]
    assert auth.check(cognito, "GET", "/models", bearer, b"")[0] == UNAUTHORIZED


def test_api_keys_and_ready_info() -> None:
    auth = LocalAuth("api-key")
    rule = RouteAuth(None, True)
    assert auth.check(rule, "GET", "/models", [("x-api-key", auth.api_key)], b"")[0] is None
    assert auth.check(rule, "GET", "/models", [("x-api-key", "other")], b"")[0] == FORBIDDEN
    assert auth.check(rule, "GET", "/models", [], b"")[0] == FORBIDDEN
    assert auth.check(RouteAuth(), "GET", "/v2/health/live", [], b"")[0] is None
    info = auth.ready_info()
    assert info["api_key"] == auth.api_key
    assert set(info["credentials"]) == {"access_key_id", "secret_access_key"}
    assert "token" in LocalAuth("cognito").ready_info() and LocalAuth("none").ready_info() == {"auth": "none"}
    with pytest.raises(ValueError):
        LocalAuth("kerberos")

"""Operator commands against the registry API (the local stack or a deployment), on the device's client.

``modelsync models list|show``, ``modelsync publish MODEL.json``, ``modelsync alias set|promote|rollback``,
``modelsync approve``: every request goes through :class:`modelsync_device.auth.AuthOpener` (``--auth
iam`` signs with SigV4: the alias and approval routes are IAM-only in every AuthMode). ``publish`` puts
the document under the bucket's ``incoming/{model}/`` prefix (boto3) and waits for the outcome the
Publish function records in ``reports/{model}/{upload id}.json``. Exit codes: 0 ok, 1 refused (HTTP 4xx
other than auth, or a rejected upload), 2 usage/configuration, 3 unreachable or timed out, 4 auth failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from modelsync_device.auth import AuthError, AuthOpener, add_auth_arguments, auth_from_args
from modelsync_device.transport import NETWORK_ERRORS, read_capped

log = logging.getLogger("modelsync")

EXIT_REFUSED, EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_UNAUTHORIZED = 1, 2, 3, 4
DEFAULT_API = "http://127.0.0.1:3000"


class CommandFailed(Exception):
    def __init__(self, message: str, code: int, answer: Any = None) -> None:
        super().__init__(message)
        self.code, self.answer = code, answer


class RegistryClient:
    """JSON requests to the API, authenticated for its AuthMode."""

    def __init__(self, api_url: str, opener: AuthOpener, timeout: float = 30.0) -> None:
        self.api_url, self.opener, self.timeout = api_url.rstrip("/"), opener, timeout

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.api_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = read_capped(resp, 4 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            raw = exc.read(64 * 1024)
            answer = _json_or_text(raw)
            code = EXIT_UNAUTHORIZED if exc.code in (401, 403) else EXIT_REFUSED
            what = "authentication failed: " if code == EXIT_UNAUTHORIZED else ""
            raise CommandFailed(f"{what}{method} {path}: HTTP {exc.code}: {_message(answer)}", code,
                                answer) from None
        except NETWORK_ERRORS as exc:
            raise CommandFailed(f"cannot reach {self.api_url}: {getattr(exc, 'reason', exc)}",
                                EXIT_UNREACHABLE) from None
        return _json_or_text(raw)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        err = answer.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if "message" in answer:
            return str(answer["message"])
    return json.dumps(answer) if not isinstance(answer, str) else answer[:300]


def _quote(part: str | int) -> str:
    return urllib.parse.quote(str(part), safe="")


# -- the commands -----------------------------------------------------------------------------------

def _models_list(c: RegistryClient, args: argparse.Namespace) -> Any:
    return c.request("GET", "/models")


def _models_show(c: RegistryClient, args: argparse.Namespace) -> Any:
    return c.request("GET", f"/models/{_quote(args.name)}")


def _alias_set(c: RegistryClient, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"version": args.version}
    if (args.canary is None) != (args.weight is None):
        raise CommandFailed("--canary and --weight go together", EXIT_CONFIG)
    if args.canary is not None:
        body["canary"] = {"version": args.canary, "weight": args.weight}
    return c.request("PUT", f"/models/{_quote(args.name)}/aliases/{_quote(args.alias)}", body)


def _alias_move(c: RegistryClient, args: argparse.Namespace) -> Any:
    return c.request("POST", f"/models/{_quote(args.name)}/aliases/{_quote(args.alias)}/{args.alias_command}")


def _approve(c: RegistryClient, args: argparse.Namespace) -> Any:
    return c.request("POST", f"/models/{_quote(args.name)}/versions/{_quote(args.version)}/approve")


def _publish(c: RegistryClient, args: argparse.Namespace) -> Any:
    """Upload to ``incoming/{model}/`` and wait for ``reports/{model}/{upload id}.json``."""
    from modelsync.service import layout

    try:
        with open(args.document, "rb") as f:
            raw = f.read()
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise CommandFailed(f"cannot read {args.document}: {exc}", EXIT_CONFIG) from None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    model = args.model or (meta.get("name") if isinstance(meta, dict) else None)
    if not isinstance(model, str) or not model:
        raise CommandFailed("the document has no metadata.name: pass --model", EXIT_CONFIG)
    bucket, endpoint, region = _s3_target(args)
    s3 = _s3_client(endpoint, region, args.profile)
    key = f"{layout.INCOMING}{model}/{os.path.basename(args.document)}"
    try:
        put = s3.put_object(Bucket=bucket, Key=key, Body=raw, ContentType="application/json")
    except Exception as exc:  # noqa: BLE001 - botocore's many errors: reported as one line
        raise CommandFailed(f"upload to s3://{bucket}/{key} failed: {exc}", EXIT_UNREACHABLE) from None
    uid = layout.upload_id(bucket, key, put["ETag"])
    report_key = layout.report_key(model, uid)
    log.info("uploaded s3://%s/%s; waiting for %s", bucket, key, report_key)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            obj = s3.get_object(Bucket=bucket, Key=report_key)
            report = json.loads(obj["Body"].read())
            break
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise CommandFailed(f"no outcome after {args.wait:.0f} s (s3://{bucket}/{report_key} not "
                                    "written yet: is the Publish function wired to the bucket?)",
                                    EXIT_UNREACHABLE) from None
            time.sleep(0.25)
    if report.get("status") == "rejected":
        raise CommandFailed(f"{model}: upload rejected: " + "; ".join(
            f"{p.get('pointer') or '/'}: {p.get('message')}" for p in report.get("problems") or [])
            , EXIT_REFUSED, report)
    return report


def _s3_target(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """Bucket and endpoint: the flags, else what the local stack at ``--api`` recorded on start."""
    bucket, endpoint, region = args.bucket, args.endpoint_url, args.region
    if bucket is None or endpoint is None:
        from modelsync.local.auth import read_state

        state = read_state(args.api) or {}
        if state and endpoint is None and bucket is None:
            endpoint = state.get("aws_endpoint")
        bucket = bucket or state.get("bucket")
        region = region or state.get("region")
    if not bucket:
        raise CommandFailed("publish needs --bucket (the stack's ModelsBucket output)", EXIT_CONFIG)
    return str(bucket), endpoint, region


def _s3_client(endpoint: str | None, region: str | None, profile: str | None) -> Any:
    if endpoint is not None:
        from modelsync.local.stack import make_client

        return make_client("s3", endpoint=endpoint, region=region or "us-east-1")
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region).client("s3")


def _summary(args: argparse.Namespace, result: Any) -> str:
    """One readable line (or a small table) per command; --json prints the answer itself."""
    cmd = args.op
    if cmd == "models list" and isinstance(result, dict):
        rows = [f"{m.get('name')}  latest {m.get('latest_version', m.get('latest'))}"
                for m in result.get("models") or []]
        return "\n".join(rows) or "no models"
    if cmd == "models show" and isinstance(result, dict):
        lines = [str(result.get("name"))]
        lines += [f"  version {v.get('version')}  {v.get('status')}  sha256 {str(v.get('sha256'))[:12]}  "
                  f"{v.get('model_type')}  {v.get('created_at')}" for v in result.get("versions") or []]
        aliases = sorted((result.get("aliases") or {}).items())
        lines += [f"  {name} -> {_alias_line(a)}" for name, a in aliases]
        return "\n".join(lines)
    if cmd == "publish" and isinstance(result, dict):
        return f"{result.get('model')}: published version {result.get('version')}"
    if isinstance(result, dict) and "alias" in result and "version" in result:
        return f"{result.get('name', args.name)} {result['alias']} -> {_alias_line(result)}"
    return json.dumps(result, indent=2, sort_keys=True)


def _alias_line(a: dict[str, Any]) -> str:
    canary = a.get("canary")
    extra = f", canary {canary.get('version')} at {canary.get('weight')}" if isinstance(canary, dict) else ""
    return f"version {a.get('version')} (revision {a.get('revision')}{extra})"


def run(args: argparse.Namespace) -> int:
    try:
        client = RegistryClient(args.api, AuthOpener(args.api, auth_from_args(args, args.api)))
        result = args.action(client, args)
    except AuthError as exc:
        log.error("modelsync %s: %s", args.op, exc)
        return EXIT_CONFIG
    except CommandFailed as exc:
        if args.json and exc.answer is not None:
            sys.stdout.write(json.dumps(exc.answer, indent=2, sort_keys=True) + "\n")
        log.error("modelsync %s: %s", args.op, exc)
        return exc.code
    sys.stdout.write((json.dumps(result, indent=2, sort_keys=True) if args.json else _summary(args, result))
                     + "\n")
    return 0


# -- parsers ----------------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, op: str, action: Any) -> None:
    p.add_argument("--api", default=os.environ.get("MODELSYNC_API", DEFAULT_API),
                   help="the API URL: the stack's ApiUrl output, or the local stack's (default "
                        f"$MODELSYNC_API or {DEFAULT_API})")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    add_auth_arguments(p)
    p.set_defaults(func=run, op=op, action=action)


def register(subparsers: Any) -> None:
    models = subparsers.add_parser("models", help="list the registry's models, or show one (API)")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    _common(msub.add_parser("list", help="every model with its latest version"), "models list", _models_list)
    show = msub.add_parser("show", help="a model's versions and aliases")
    show.add_argument("name")
    _common(show, "models show", _models_show)

    pub = subparsers.add_parser("publish", help="upload a model document and wait for the published version "
                                "or the rejection report")
    pub.add_argument("document", help="the model document (JSON), e.g. from `modelsync export`")
    pub.add_argument("--model", help="model name (default: the document's metadata.name)")
    pub.add_argument("--bucket", help="the models bucket (default: the local stack's at --api)")
    pub.add_argument("--endpoint-url", help="S3 endpoint (default: the local stack's at --api, else AWS)")
    pub.add_argument("--wait", type=float, default=60.0, metavar="SECONDS", help="how long to wait (60)")
    _common(pub, "publish", _publish)

    alias = subparsers.add_parser("alias", help="point, promote or roll back an alias (IAM)")
    asub = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")
    s = asub.add_parser("set", help="point ALIAS at VERSION, optionally with a canary")
    s.add_argument("name")
    s.add_argument("alias")
    s.add_argument("version", type=int)
    s.add_argument("--canary", type=int, metavar="V", help="canary version")
    s.add_argument("--weight", type=float, metavar="W", help="share of callers on the canary (0..1)")
    _common(s, "alias set", _alias_set)
    for name, text in (("promote", "the canary becomes the alias version"),
                       ("rollback", "drop the canary, or move back to the previous version")):
        m = asub.add_parser(name, help=text)
        m.add_argument("name")
        m.add_argument("alias")
        _common(m, f"alias {name}", _alias_move)

    ap = subparsers.add_parser("approve", help="approve a pending version (RequireApproval; IAM)")
    ap.add_argument("name")
    ap.add_argument("version", type=int)
    _common(ap, "approve", _approve)

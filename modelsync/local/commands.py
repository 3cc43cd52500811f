"""``modelsync local`` (the embedded stack, foreground) and ``modelsync invoke`` (one handler, in-process)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import signal
import sys
import threading
from typing import Any

from .auth import LOCAL_MODES

log = logging.getLogger("modelsync.local")


def _parameter_overrides(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        for pair in item.split():
            key, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"--parameter-overrides: expected Key=Value, got {pair!r}")
            out[key.removeprefix("ParameterKey=")] = value
    return out


DEFAULT_CONCURRENCY = 4  # enough to overlap a slow request with others on a laptop; Lambda's is far higher


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "local",
        help="run the whole system locally (moto as AWS, handlers wired to the template's events)",
        description="Run the stack of template.yaml locally without Docker or an AWS account. Prints one "
        "JSON line (api, aws_endpoint, region, bucket, topic_arn; with --auth also credentials, api_key or "
        "token) when ready; stops on Ctrl-C/SIGTERM. `modelsync local token` issues Cognito-mode tokens.",
    )
    p.add_argument(
        "--template", type=pathlib.Path, default=None, help="template.yaml (default: the repository's)"
    )
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--host", default="127.0.0.1", help="address both servers listen on (default 127.0.0.1)")
    p.add_argument(
        "--aws-port", type=int, default=4566, help="embedded AWS endpoint port (0 = any free port)"
    )
    p.add_argument("--api-port", type=int, default=3000, help="API Gateway port (0 = any free port)")
    p.add_argument("--bucket", default="modelsync-models", help="name of the models bucket")
    p.add_argument(
        "--schedule-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fire Schedule events every SECONDS instead of the template's rate",
    )
    p.add_argument("--parameter-overrides", nargs="*", metavar="KEY=VALUE", help="template parameter values")
    p.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                   help="execution environments per function, as Lambda's concurrent executions: up to N "
                        f"invocations of one function run at once (default {DEFAULT_CONCURRENCY}; 1 "
                        "serialises them)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the process that started this one exits (test fixtures, scripts)")
    p.add_argument("--auth", choices=LOCAL_MODES, default="none",
                   help="enforce the template's auth with this AuthMode: iam (SigV4 with the credentials the "
                        "ready line prints), api-key (x-api-key), cognito (bearer tokens); default none")
    p.set_defaults(func=run_local)
    lsub = p.add_subparsers(dest="local_command", metavar="ACTION")
    t = lsub.add_parser("token", help="issue a bearer token for a running `modelsync local --auth cognito`",
                        description="Print a new token (HS256 JWT signed with the running stack's secret, "
                        "expiry checked) for `Authorization: Bearer`.")
    t.add_argument("--api", default="http://127.0.0.1:3000", help="the local stack's API URL")
    t.add_argument("--ttl", type=float, default=3600.0, metavar="SECONDS", help="lifetime (default 3600)")
    t.add_argument("--subject", default="local-user", help="the token's sub / cognito:username")
    t.set_defaults(func=run_token)

    q = subparsers.add_parser(
        "invoke",
        help="invoke one handler in-process with an event file (sam local invoke without Docker)",
        description="Run one function of template.yaml in this process with the given event and print its "
        "JSON result. With --endpoint-url it runs against that local stack (modelsync local); "
        "without, against real AWS, resource names from the CloudFormation stack --stack-name.",
    )
    q.add_argument("function", help="logical id (PublishFunction) or functions/ folder name (publish)")
    q.add_argument("-e", "--event", default=None, help="event JSON file ('-' for stdin; default {})")
    q.add_argument("--endpoint-url", default=None, help="the local stack's aws_endpoint")
    q.add_argument(
        "--region", default=None, help="default: us-east-1 locally, else AWS_REGION / profile region"
    )
    q.add_argument(
        "--stack-name",
        default=None,
        help="deployed stack whose physical names to use (default with real AWS: modelsync)",
    )
    q.add_argument("--template", type=pathlib.Path, default=None)
    q.add_argument("--bucket", default="modelsync-models", help="the local stack's models bucket name")
    q.add_argument("--parameter-overrides", nargs="*", metavar="KEY=VALUE")
    q.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (BatchFunction shows one on a terminal from its progress logs)")
    q.set_defaults(func=run_invoke)


class _Stop(BaseException):
    """Raised by the signal handler while the stack starts: unwinds start-up, which then cleans up."""


def run_local(args: argparse.Namespace) -> int:
    stop = threading.Event()
    ready = False

    def on_signal(signum: int, _frame: Any) -> None:
        first = not stop.is_set()
        stop.set()
        if first:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            if not ready:
                raise _Stop

    # first thing: a signal during the imports or the start-up below must stop it too, within moments
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = None
    try:
        from .preflight import StackStartError
        from .stack import LocalStack

        real_stdout = sys.stdout
        stack = LocalStack(
            args.template,
            region=args.region,
            host=args.host,
            aws_port=args.aws_port,
            api_port=args.api_port,
            bucket=args.bucket,
            schedule_every=args.schedule_every,
            parameters=_parameter_overrides(args.parameter_overrides),
            auth=args.auth,
            concurrency=args.concurrency,
        )
        try:
            stack.start()
        except StackStartError as exc:
            return _fail("local", str(exc))
        ready = True
        real_stdout.write(json.dumps(stack.ready_info()) + "\n")
        real_stdout.flush()
        if stack.runtime is not None:
            stack.runtime.send_all_stdout_to_stderr()
        parent = os.getppid()
        while not stop.wait(0.5):
            if args.exit_with_parent and os.getppid() != parent:
                log.info("parent process %d exited: shutting down", parent)
                break
    except _Stop:
        pass
    finally:
        served, ready = ready, True  # from here on a signal only asks (again) to stop
        if stack is not None:
            stack.stop()
            if served:
                log.info("local stack stopped")
        for s, h in previous.items():
            signal.signal(s, h)
    return 0


def run_token(args: argparse.Namespace) -> int:
    from .auth import issue_token, read_state

    state = read_state(args.api)
    if state is None:
        return _fail("local token", f"no local stack is running at {args.api} (start `modelsync local "
                     "--auth cognito`, or pass its --api)")
    if state.get("auth") != "cognito":
        return _fail("local token", f"the local stack at {args.api} runs with --auth {state.get('auth')}, "
                     "not cognito: it accepts no tokens")
    sys.stdout.write(issue_token(str(state["token_secret"]), args.subject, args.ttl) + "\n")
    return 0


def _fail(command: str, message: str, status: int = 1) -> int:
    """The one line a command prints when it cannot do its job (returns the exit status), not a traceback."""
    sys.stderr.write(f"modelsync {command}: {message}\n")
    sys.stderr.flush()
    return status


def _read_event(path: str | None) -> Any:
    """The event file's JSON; a missing file or invalid JSON is a ValueError with a one-line reason."""
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read event file {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        source = "stdin" if path == "-" else path
        raise ValueError(f"event {source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from exc


def _check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """A ValueError naming the endpoint when nothing listens there (instead of botocore's retries)."""
    import socket
    import urllib.parse

    url = urllib.parse.urlsplit(endpoint)
    if not url.hostname:
        raise ValueError(f"--endpoint-url {endpoint!r} is not a URL (expected http://HOST:PORT)")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
        with socket.create_connection((url.hostname, port), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ValueError(f"cannot reach {endpoint}: {reason} (is `modelsync local` running there?)") from exc


def run_invoke(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from modelsync import template as tpl

    from .resources import StackNames, find_function, function_specs
    from .runtime import Runtime, configure_logging
    from .stack import make_client

    endpoint = args.endpoint_url
    try:
        event = _read_event(args.event)
        if endpoint is not None:
            _check_reachable(endpoint)
    except ValueError as exc:
        return _fail("invoke", str(exc))
    configure_logging()
    template_path = pathlib.Path(args.template) if args.template else tpl.DEFAULT_TEMPLATE
    template = tpl.load(template_path)
    region = args.region or ("us-east-1" if endpoint else _default_region())

    def clients(name: str) -> Any:
        return make_client(name, endpoint=endpoint, region=region)

    try:
        if args.stack_name or endpoint is None:
            names = StackNames.from_cloudformation(
                template, args.stack_name or "modelsync", region=region, clients=clients
            )
        else:
            names = StackNames.local(
                template,
                region=region,
                endpoint=endpoint,
                bucket=args.bucket,
                clients=clients,
                parameters=_parameter_overrides(args.parameter_overrides),
            )
        fn = find_function(function_specs(names, template_path.parent), args.function)
    except KeyError as exc:
        return _fail("invoke", str(exc.args[0]), status=2)
    except (BotoCoreError, ClientError) as exc:
        where = endpoint or f"AWS ({region})"
        return _fail("invoke", f"cannot read the stack's resource names from {where}: {exc}")
    from modelsync.progress import batch_log_bar

    real_stdout = sys.stdout
    runtime = Runtime(region=region, endpoint=endpoint)
    runtime.activate()
    try:
        with batch_log_bar("batch", quiet=args.quiet):
            inv = runtime.invoke(fn, event, trigger="invoke")
    finally:
        runtime.deactivate()
    real_stdout.write(json.dumps(inv.result if inv.ok else inv.error) + "\n")
    real_stdout.flush()
    return 0 if inv.ok else 1


def _default_region() -> str:
    import boto3

    return boto3.session.Session().region_name or "us-east-1"

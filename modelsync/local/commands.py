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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "local",
        help="run the whole system locally (moto as AWS, handlers wired to the template's events)",
        description="Run the stack of template.yaml locally without Docker or an AWS account. Prints one "
        "JSON line (api, aws_endpoint, region, bucket, topic_arn) when ready; stops on Ctrl-C/SIGTERM.",
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
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the process that started this one exits (test fixtures, scripts)")
    p.set_defaults(func=run_local)

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
    q.set_defaults(func=run_invoke)


def run_local(args: argparse.Namespace) -> int:
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
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except OSError as exc:
            log.error("cannot start the local stack: %s (is the port in use? --aws-port 0 / --api-port 0 "
                      "pick free ones)", exc)
            return 1
        real_stdout.write(json.dumps(stack.ready_info()) + "\n")
        real_stdout.flush()
        if stack.runtime is not None:
            stack.runtime.send_all_stdout_to_stderr()
        parent = os.getppid()
        while not stop.wait(0.5):
            if args.exit_with_parent and os.getppid() != parent:
                log.info("parent process %d exited: shutting down", parent)
                break
    finally:
        stack.stop()
        for s, h in previous.items():
            signal.signal(s, h)
        log.info("local stack stopped")
    return 0


def _read_event(path: str | None) -> Any:
    if path is None:
        return {}
    text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def run_invoke(args: argparse.Namespace) -> int:
    from modelsync import template as tpl

    from .resources import StackNames, find_function, function_specs
    from .runtime import Runtime, configure_logging
    from .stack import make_client

    configure_logging()
    template_path = pathlib.Path(args.template) if args.template else tpl.DEFAULT_TEMPLATE
    template = tpl.load(template_path)
    endpoint = args.endpoint_url
    region = args.region or ("us-east-1" if endpoint else _default_region())

    def clients(name: str) -> Any:
        return make_client(name, endpoint=endpoint, region=region)

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
    try:
        fn = find_function(function_specs(names, template_path.parent), args.function)
    except KeyError as exc:
        log.error("%s", exc.args[0])
        return 2
    event = _read_event(args.event)
    real_stdout = sys.stdout
    runtime = Runtime(region=region, endpoint=endpoint)
    runtime.activate()
    try:
        inv = runtime.invoke(fn, event, trigger="invoke")
    finally:
        runtime.deactivate()
    real_stdout.write(json.dumps(inv.result if inv.ok else inv.error) + "\n")
    real_stdout.flush()
    return 0 if inv.ok else 1


def _default_region() -> str:
    import boto3

    return boto3.session.Session().region_name or "us-east-1"

"""The embedded local stack: moto's server as AWS, the template's resources, handlers wired to events.

Usable in-process::

    with LocalStack(aws_port=0, api_port=0) as stack:
        s3 = stack.boto3_client("s3")
        s3.put_object(Bucket=stack.bucket, Key="incoming/iris/model.json", Body=...)
        urllib.request.urlopen(f"{stack.api_url}/models/iris")

``modelsync local`` is a thin wrapper that prints :meth:`LocalStack.ready_info` and waits for a signal.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from modelsync import template as tpl

from . import wiring
from .apigw import ApiGateway, ApiServer, Route
from .auth import AUTH_MODE_PARAMETER, LocalAuth, remove_state, write_state
from .preflight import import_handlers, listen, port_error
from .resources import TOPIC, Provisioner, StackNames, function_specs
from .runtime import DUMMY_CREDENTIALS, FunctionSpec, Runtime, configure_logging
from .stepfunctions import LocalStepFunctions

log = logging.getLogger("modelsync.local")

DEFAULT_AWS_PORT = 4566
DEFAULT_API_PORT = 3000
DEFAULT_BUCKET = "modelsync-models"
INTERNAL_PREFIX = "modelsync-local-"  # internal queues (S3 notifications) are named so


def make_client(name: str, *, endpoint: str | None, region: str) -> Any:
    """A boto3 client for the local stack (dummy credentials) or, without endpoint, for real AWS."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()  # one session per client: sessions are not thread-safe
    cfg = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
    if endpoint is None:
        return session.client(name, region_name=region, config=cfg)
    return session.client(
        name,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        config=cfg,
    )


class LocalStack:
    """Start with :meth:`start` (or ``with``); everything stops with :meth:`stop`.

    ``aws_port``/``api_port`` 0 pick free ports. ``schedule_every`` (seconds) replaces every schedule's
    rate. ``parameters`` override template parameter defaults (like ``--parameter-overrides``). ``auth``
    (none, iam, api-key, cognito) deploys the template with that ``AuthMode`` and enforces each route's
    auth as the template declares it; :attr:`auth` holds the credentials, key and token secret.
    While running, ``os.environ`` holds dummy credentials, the region and ``AWS_ENDPOINT_URL`` (restored
    on stop), so boto3 clients created in this process without arguments reach the local stack.
    """

    def __init__(
        self,
        template: str | pathlib.Path | None = None,
        *,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        aws_port: int = DEFAULT_AWS_PORT,
        api_port: int = DEFAULT_API_PORT,
        bucket: str | None = DEFAULT_BUCKET,
        schedule_every: float | None = None,
        parameters: Mapping[str, Any] | None = None,
        stack_name: str = "modelsync",
        route_handler_stdout: bool = True,
        auth: str = "none",
        concurrency: int = 1,
    ) -> None:
        # concurrency: execution environments per function, at most (modelsync local --concurrency)
        self.concurrency = max(1, int(concurrency))
        self.template_path = pathlib.Path(template) if template else tpl.DEFAULT_TEMPLATE
        self.region = region
        self.host = host
        self.aws_port = aws_port
        self.api_port = api_port
        self.requested_bucket = bucket
        self.schedule_every = schedule_every
        self.parameters = dict(parameters or {})
        self.auth = LocalAuth(auth, region=region)
        if auth in AUTH_MODE_PARAMETER:
            self.parameters.setdefault("AuthMode", AUTH_MODE_PARAMETER[auth])
        self.stack_name = stack_name
        self.route_handler_stdout = route_handler_stdout
        self.template = tpl.load(self.template_path)
        self.names: StackNames | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.routes: list[Route] = []
        self.runtime: Runtime | None = None
        self._step_functions: LocalStepFunctions | None = None
        self._moto: Any = None
        self._moto_thread: threading.Thread | None = None
        self._endpoint: str | None = None
        self._api: ApiServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._provisioned: dict[str, str] = {}

    # -- public ----------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the stack is not started")
        return self._endpoint

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("the stack is not started")
        return self._api.url

    @property
    def bucket(self) -> str:
        lid = self._first(("AWS::S3::Bucket",), prefer=_primary_bucket(self.template))
        return str(self._names.refs[lid])

    @property
    def topic_arn(self) -> str:
        return str(self._names.refs[self._first((TOPIC,))])

    def ref(self, logical_id: str) -> Any:
        """What ``!Ref logical_id`` is in the local stack (table name, topic ARN, queue URL ...)."""
        return self._names.refs[logical_id]

    def boto3_client(self, name: str) -> Any:
        """A boto3 client for the embedded AWS (cached per service; boto3 clients are thread-safe)."""
        with self._clients_lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = make_client(name, endpoint=self.endpoint, region=self.region)
            return client

    def ready_info(self) -> dict[str, Any]:
        return {
            "api": self.api_url,
            "aws_endpoint": self.endpoint,
            "region": self.region,
            "bucket": self.bucket,
            "topic_arn": self.topic_arn,
            "resources": {
                lid: self._names.refs[lid]
                for lid in self._names.names
                if lid in self._names.refs and lid in self._provisioned
            },
            "functions": sorted(self.functions),
            "concurrency": self.concurrency,
            **self.auth.ready_info(),
        }

    def invoke(self, function: str, event: Any) -> Any:
        """Invoke one function in-process (like ``modelsync invoke``); returns the result or raises."""
        from .resources import find_function

        assert self.runtime is not None
        inv = self.runtime.invoke(find_function(self.functions, function), event, trigger="invoke")
        if inv.error is not None:
            raise RuntimeError(f"{function} failed: {inv.error['errorType']}: {inv.error['errorMessage']}")
        return inv.result

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        if self._started:
            return self
        self._started = True
        t0 = time.perf_counter()
        configure_logging()
        try:
            self._start_aws()
            self.runtime = Runtime(region=self.region, endpoint=self.endpoint, concurrency=self.concurrency)
            self.runtime.activate(route_stdout=self.route_handler_stdout)
            # before provisioning: moto keeps executable state machines in a backend of their own
            self._step_functions = LocalStepFunctions(self.runtime, self.functions, self._moto_port())
            self._step_functions.start()
            self.names = StackNames.local(
                self.template,
                region=self.region,
                endpoint=self.endpoint,
                stack_name=self.stack_name,
                parameters=self.parameters,
                bucket=self.requested_bucket,
                clients=self.boto3_client,
            )
            provisioner = Provisioner(self.names, self.boto3_client)
            provisioner.provision()
            self._provisioned = dict(provisioner.created)
            self.functions.update(function_specs(self.names, self.template_path.parent))
            import_handlers(self.runtime, self.functions.values(), self.template_path.parent)
            self._wire()
            try:
                gateway = ApiGateway(self.routes, self.runtime, self.auth if self.auth.enforced else None)
                self._api = ApiServer(gateway, self.host, self.api_port)
            except OSError as exc:
                raise port_error(exc, self.host, self.api_port, role="API", option="--api-port") from exc
            self._api.start()
            write_state(self.api_url, self.ready_info(), self.auth)
            for th in self._threads:
                th.start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "local stack ready in %.1f s: %d resources, %d functions, %d routes, api %s, aws %s",
            time.perf_counter() - t0,
            len(self._provisioned),
            len(self.functions),
            len(self.routes),
            self.api_url,
            self.endpoint,
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._api is not None:
            remove_state(self.api_url)
            self._api.stop()
        for th in self._threads:
            if th.is_alive():
                th.join(timeout=5)
        if self._moto is not None:
            if self._moto_thread is not None and self._moto_thread.is_alive():
                self._moto.shutdown()  # waits for serve_forever: only when it runs
                self._moto_thread.join(timeout=5)
            self._moto.server_close()
            self._moto = self._moto_thread = None
        if self._step_functions is not None:
            self._step_functions.stop()
            self._step_functions = None
        if self.runtime is not None:
            self.runtime.deactivate()

    def _start_aws(self) -> None:
        """moto's server app on a socket bound here (a taken port fails now, not in a thread that hangs)."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        with listen(self.host, self.aws_port, role="AWS endpoint", option="--aws-port") as sock:
            host, port = sock.getsockname()[:2]
            app = DomainDispatcherApplication(create_backend_app)
            self._moto = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler,
                                     fd=sock.fileno())
        self._moto_thread = threading.Thread(target=self._moto.serve_forever, kwargs={"poll_interval": 0.2},
                                             name="modelsync-local-aws", daemon=True)
        self._moto_thread.start()
        self._endpoint = f"http://{host}:{port}"

    def _moto_port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    # -- wiring ----------------------------------------------------------------------------------------
    @property
    def _names(self) -> StackNames:
        if self.names is None:
            raise RuntimeError("the stack is not started")
        return self.names

    def _first(self, types: tuple[str, ...], prefer: str | None = None) -> str:
        if prefer and prefer in self._names.refs:
            return prefer
        for lid in self.template.of_type(*types):
            if lid in self._names.refs:
                return lid
        raise KeyError(f"the template declares no {' / '.join(types)}")

    def _bindings(self) -> list[wiring.EventBinding]:
        out = []
        for fn in self.functions.values():
            for name, ev in fn.events.items():
                out.append(wiring.EventBinding(fn, name, str(ev.get("Type")), ev.get("Properties") or {}))
        return out

    def _wire(self) -> None:
        s3_by_bucket: dict[str, list[wiring.EventBinding]] = {}
        runtime = self.runtime
        assert runtime is not None
        for b in self._bindings():
            if b.type == "S3":
                s3_by_bucket.setdefault(str(b.properties["Bucket"]), []).append(b)
            elif b.type == "DynamoDB":
                self._threads.append(
                    wiring.StreamSource(
                        b,
                        runtime,
                        self.boto3_client,
                        str(b.properties["Stream"]),
                        self._stop,
                        self._send_failure,
                    )
                )
            elif b.type == "Schedule":
                schedule = wiring.schedule_for(b, self.schedule_every)
                if schedule is not None:
                    rule = f"{self.stack_name}-{b.function.logical_id}{b.name}"[:64]
                    self._threads.append(
                        wiring.ScheduleSource(b, runtime, schedule, rule, self.region, self._stop)
                    )
            elif b.type != "Api":
                log.warning(
                    "%s: %s events are not emulated locally (event %s)", b.function.logical_id, b.type, b.name
                )
        self.routes = wiring.api_routes(self.functions, self._names)
        for bucket, bindings in s3_by_bucket.items():
            self._wire_s3(bucket, bindings)

    def _wire_s3(self, bucket: str, bindings: list[wiring.EventBinding]) -> None:
        assert self.runtime is not None
        sqs = self.boto3_client("sqs")
        configs = []
        for b in bindings:
            qname = f"{INTERNAL_PREFIX}s3-{b.function.logical_id}-{b.name}"[:80]
            url = sqs.create_queue(QueueName=qname)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            configs.append(wiring.s3_queue_configuration(b, arn))
            self._threads.append(wiring.S3Source(b, self.runtime, self.boto3_client, url, self._stop))
        self.boto3_client("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
        )

    def _send_failure(self, destination_arn: str, record: dict[str, Any]) -> None:
        """A stream's OnFailure destination: an SQS queue, as template.yaml declares."""
        import json

        sqs = self.boto3_client("sqs")
        url = sqs.get_queue_url(QueueName=destination_arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))


def _primary_bucket(template: tpl.Template) -> str | None:
    from .resources import primary_bucket

    return primary_bucket(template)

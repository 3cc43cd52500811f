"""Run Lambda handlers in this process, the way the Lambda runtime would.

Each function of the template is imported from its code directory under a unique module name, with the
environment the template gives it, dummy credentials and ``AWS_ENDPOINT_URL`` pointing at the embedded AWS,
so the handler's boto3 clients talk to the local stack unchanged. Invocations run one at a time (the
process has one ``os.environ`` and the functions' environments differ), which also mirrors one Lambda
execution environment handling one request at a time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

log = logging.getLogger("modelsync.local")

ACCOUNT_ID = "123456789012"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that could send a handler's boto3 to a real account or another endpoint: removed while local.
_SCRUBBED_PREFIXES = ("AWS_ENDPOINT_URL_",)
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
)


@dataclass
class FunctionSpec:
    """One ``AWS::Serverless::Function`` with its properties resolved to local names."""

    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    physical_name: str
    region: str
    timeout: float = 3.0
    memory_mb: int = 128
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.physical_name}"

    def handler_file(self) -> tuple[Path, str]:
        """``app.lambda_handler`` -> (code_dir/app.py, "lambda_handler"); dotted packages allowed."""
        module, _, attr = self.handler.rpartition(".")
        if not module or not attr:
            raise ValueError(
                f"{self.logical_id}: Handler {self.handler!r} is not of the form module.function"
            )
        return self.code_dir.joinpath(*module.split(".")).with_suffix(".py"), attr


class LambdaContext:
    """The context object handed to handlers (the attributes the Python runtime's one has)."""

    def __init__(self, fn: FunctionSpec, request_id: str) -> None:
        self.function_name = fn.physical_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{fn.physical_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What one invocation returned (``result``) or raised (``error``, Lambda's error payload)."""

    function: str
    request_id: str
    duration_ms: float
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _StdoutRouter(io.TextIOBase):
    """``sys.stdout`` while the stack runs: writes made inside a handler go to stderr.

    Handlers (and Powertools' Logger, which binds ``sys.stdout`` when it is created) print to stdout as
    they would in Lambda; locally stdout belongs to the caller (the ready line, the demo's output).
    """

    def __init__(self, target: TextIO, handler_stream: TextIO) -> None:
        self.target = target
        self.handler_stream = handler_stream
        self._local = threading.local()

    @contextlib.contextmanager
    def handler_output(self) -> Iterator[None]:
        previous = getattr(self._local, "active", False)
        self._local.active = True
        try:
            yield
        finally:
            self._local.active = previous

    def _stream(self) -> TextIO:
        return self.handler_stream if getattr(self._local, "active", False) else self.target

    def write(self, s: str) -> int:
        return self._stream().write(s)

    def flush(self) -> None:
        self._stream().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream().isatty()

    def fileno(self) -> int:
        return self._stream().fileno()

    @property
    def buffer(self) -> Any:
        return getattr(self._stream(), "buffer", None)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


class Runtime:
    """Imports handlers and invokes them with their environment, one invocation at a time."""

    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None,
        metrics_namespace: str = "modelsync",
        on_invoke: Callable[[Invocation, str, str], None] | None = None,
    ) -> None:
        # on_invoke(invocation, trigger, outcome) reports each invocation (default: one log line on stderr)
        self.region = region
        self.endpoint = endpoint
        self.metrics_namespace = metrics_namespace
        self.on_invoke = on_invoke or _log_invocation
        self._lock = threading.RLock()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._modules: dict[str, ModuleType] = {}
        self._saved_env: dict[str, str] | None = None
        self._saved_stdout: TextIO | None = None
        self._router: _StdoutRouter | None = None

    # -- process state -------------------------------------------------------------------------------
    def base_environment(self) -> dict[str, str]:
        """What every function sees besides its own Environment: region, dummy credentials, endpoint."""
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "AWS_SAM_LOCAL": "true",
        }
        if self.endpoint:
            env.update(DUMMY_CREDENTIALS)
            env["AWS_ENDPOINT_URL"] = self.endpoint
            # A profile in ~/.aws could name real credentials or another endpoint: not while local.
            env["AWS_CONFIG_FILE"] = os.devnull
            env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        return env

    def activate(self, *, route_stdout: bool = True) -> None:
        """Set the base environment (restored by :meth:`deactivate`) and route handler stdout to stderr."""
        with self._lock:
            if self._saved_env is not None:
                return
            self._saved_env = dict(os.environ)
            if self.endpoint:
                for key in list(os.environ):
                    if key in _SCRUBBED or key.startswith(_SCRUBBED_PREFIXES):
                        del os.environ[key]
            os.environ.update(self.base_environment())
            if route_stdout:
                self._saved_stdout = sys.stdout
                self._router = _StdoutRouter(sys.stdout, sys.stderr)
                sys.stdout = self._router

    def deactivate(self) -> None:
        with self._lock:
            if self._saved_env is None:
                return
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None
            if self._saved_stdout is not None and sys.stdout is self._router:
                sys.stdout = self._saved_stdout
            self._saved_stdout = None

    def send_all_stdout_to_stderr(self) -> None:
        """For the ``modelsync local`` command: after the ready line, stdout carries nothing else."""
        if self._router is not None:
            self._router.target = sys.stderr

    @contextlib.contextmanager
    def _function_environment(self, fn: FunctionSpec) -> Iterator[None]:
        env = {
            **self.base_environment(),
            **fn.environment,
            "AWS_LAMBDA_FUNCTION_NAME": fn.physical_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.physical_name}",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
        }
        before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        router = self._router
        try:
            if router is not None:
                with router.handler_output():
                    yield
            else:
                yield
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # -- handlers --------------------------------------------------------------------------------------
    def load(self, fn: FunctionSpec) -> Callable[[Any, Any], Any]:
        """Import the handler module by file path under a unique name (every function has an ``app.py``)."""
        with self._lock:
            handler = self._handlers.get(fn.logical_id)
            if handler is not None:
                return handler
            path, attr = fn.handler_file()
            if not path.is_file():
                raise FileNotFoundError(f"{fn.logical_id}: handler file {path} not found")
            module_name = f"modelsync_local_fn_{fn.logical_id}_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            # The code directory is the task root in Lambda: siblings of app.py import as top-level modules.
            sys.path.insert(0, str(fn.code_dir))
            try:
                with self._function_environment(fn):
                    sys.modules[module_name] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        sys.modules.pop(module_name, None)
                        raise
            finally:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(fn.code_dir))
            handler = getattr(module, attr, None)
            if not callable(handler):
                raise AttributeError(f"{fn.logical_id}: {path} has no function {attr!r}")
            self._handlers[fn.logical_id] = handler
            self._modules[fn.logical_id] = module
            return handler

    def module(self, fn: FunctionSpec) -> ModuleType:
        """The function's imported handler module (loaded if need be): tests reach its warm state."""
        self.load(fn)
        return self._modules[fn.logical_id]

    def invoke(
        self,
        fn: FunctionSpec,
        event: Any,
        *,
        trigger: str = "invoke",
        outcome_of: Callable[[Any], str] | None = None,
    ) -> Invocation:
        """Invoke synchronously; the result is JSON round-tripped as Lambda's runtime would serialise it.

        ``outcome_of(result)`` words a successful invocation's outcome for the log line (default "ok").
        """
        request_id = str(uuid.uuid4())
        with self._lock:
            start = time.perf_counter()
            try:
                handler = self.load(fn)
                payload = json.loads(json.dumps(event))
                with self._function_environment(fn):
                    result = handler(payload, LambdaContext(fn, request_id))
                try:
                    result = json.loads(json.dumps(result))
                except (TypeError, ValueError) as exc:
                    raise _MarshalError(f"Unable to marshal response: {exc}") from exc
                inv = Invocation(
                    fn.logical_id, request_id, (time.perf_counter() - start) * 1000, result=result
                )
            except Exception as exc:
                inv = Invocation(
                    fn.logical_id,
                    request_id,
                    (time.perf_counter() - start) * 1000,
                    error=error_payload(exc, request_id),
                )
                log.warning("%s raised:", fn.logical_id, exc_info=True)
        if inv.error is not None:
            outcome = f"error {inv.error['errorType']}: {inv.error['errorMessage']}"
        else:
            outcome = outcome_of(inv.result) if outcome_of else "ok"
        if inv.duration_ms > fn.timeout * 1000:
            outcome += f" (over its Timeout of {fn.timeout:g} s: Lambda would have stopped it)"
        self.on_invoke(inv, trigger, outcome)
        return inv


def configure_logging() -> None:
    """Give the local stack's logger its own stderr handler.

    Powertools' Logger takes over the logger named after the service (``modelsync``) and stops
    propagation, so ``modelsync.local`` would otherwise end up in the handlers' JSON on stdout. AWS SDK
    chatter stays at WARNING, as in Lambda.
    """
    if not any(getattr(h, "_modelsync_local", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S"))
        handler._modelsync_local = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.DEBUG if logging.getLogger().level == logging.DEBUG else logging.INFO)
    for name in ("botocore", "boto3", "urllib3"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)


class _MarshalError(Exception):
    """Lambda's ``Runtime.MarshalError``: the handler returned something JSON cannot carry."""


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The payload Lambda returns for an unhandled exception."""
    error_type = "Runtime.MarshalError" if isinstance(exc, _MarshalError) else type(exc).__name__
    return {
        "errorMessage": str(exc),
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _log_invocation(inv: Invocation, trigger: str, outcome: str) -> None:
    log.info("%s [%s] %.1f ms %s", inv.function, trigger, inv.duration_ms, outcome)

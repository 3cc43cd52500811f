"""Run Lambda handlers in this process, the way the Lambda runtime would.

Each function of the template is imported from its code directory under a unique module name, with the
environment the template gives it, dummy credentials and ``AWS_ENDPOINT_URL`` pointing at the embedded AWS,
so the handler's boto3 clients talk to the local stack unchanged.

Concurrency as Lambda's: each function has a pool of up to ``concurrency`` execution environments (each
its own import of the handler module, so its own clients and warm caches); an environment handles one
invocation at a time, and the invocations of one function run concurrently in different environments.
The process has one ``os.environ``: invocations of one function share it (their variables are equal);
those of different functions take turns (:class:`_EnvironmentGate`). Environments are created one at a
time, with the function's variables (the endpoint and dummy credentials first of all) already set, so no
client is ever created without them.
"""

from __future__ import annotations

import collections
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
    """Imports handlers and invokes them in their environment, up to ``concurrency`` at once per function."""

    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None,
        metrics_namespace: str = "modelsync",
        on_invoke: Callable[[Invocation, str, str], None] | None = None,
        concurrency: int = 1,
    ) -> None:
        # on_invoke(invocation, trigger, outcome) reports each invocation (default: one log line on stderr)
        self.region = region
        self.endpoint = endpoint
        self.metrics_namespace = metrics_namespace
        self.on_invoke = on_invoke or _log_invocation
        self.concurrency = max(1, int(concurrency))  # execution environments per function, at most
        self._lock = threading.RLock()
        self._create_lock = threading.Lock()
        self._gate = _EnvironmentGate()
        self._pools: dict[str, _Pool] = {}
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

    def function_environment(self, fn: FunctionSpec) -> dict[str, str]:
        """Every variable the function's handler sees: the base, its template Environment, Lambda's own."""
        return {
            **self.base_environment(),
            **fn.environment,
            "AWS_LAMBDA_FUNCTION_NAME": fn.physical_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.physical_name}",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
        }

    def aws_environment(self, fn: FunctionSpec) -> dict[str, str]:
        """The function's variables as Lambda sets them in AWS: without the local switches (tracing
        disabled, SAM local), so Powertools behaves as deployed. bench/cold_start.py and the import
        tests start fresh processes with it."""
        env = self.function_environment(fn)
        for local_only in ("POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL"):
            env.pop(local_only, None)
        return env

    @contextlib.contextmanager
    def _in_environment(self, fn: FunctionSpec) -> Iterator[None]:
        """The function's variables in ``os.environ`` (shared with its other running invocations)."""
        with self._gate.hold(fn.logical_id, self.function_environment(fn)):
            router = self._router
            if router is not None:
                with router.handler_output():
                    yield
            else:
                yield

    # -- execution environments -------------------------------------------------------------------------
    def _pool(self, fn: FunctionSpec) -> _Pool:
        with self._lock:
            pool = self._pools.get(fn.logical_id)
            if pool is None:
                pool = self._pools[fn.logical_id] = _Pool(self.concurrency)
            return pool

    def _create(self, fn: FunctionSpec, index: int) -> _Environment:
        """A new execution environment: the handler module imported under its own name (the init phase).

        One at a time in the process (boto3's default session is not safe to create clients from in
        several threads at once), inside the function's environment variables."""
        path, attr = fn.handler_file()
        if not path.is_file():
            raise FileNotFoundError(f"{fn.logical_id}: handler file {path} not found")
        module_name = f"modelsync_local_fn_{fn.logical_id}_{path.stem}" + (f"_{index}" if index else "")
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        with self._create_lock:
            # The code directory is the task root in Lambda: siblings of app.py import as top-level modules.
            sys.path.insert(0, str(fn.code_dir))
            try:
                with self._in_environment(fn):
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
        return _Environment(module, handler, index)

    @contextlib.contextmanager
    def _environment(self, fn: FunctionSpec) -> Iterator[_Environment]:
        """An idle environment of the function (the most recently used), a new one while the pool has
        room, else the first to come free."""
        pool = self._pool(fn)
        with pool.cond:
            while not pool.idle and pool.created >= pool.size:
                pool.cond.wait()
            env = pool.idle.pop() if pool.idle else None
            index = pool.created
            if env is None:
                pool.created += 1
        if env is None:
            try:
                env = self._create(fn, index)
            except BaseException:
                with pool.cond:
                    pool.created -= 1
                    pool.cond.notify()
                raise
            with pool.cond:
                pool.all.append(env)
        try:
            yield env
        finally:
            with pool.cond:
                pool.idle.append(env)
                pool.cond.notify()

    def environments(self, fn: FunctionSpec) -> int:
        """How many execution environments the function has now (tests; the local stack's log)."""
        return len(self._pool(fn).all)

    # -- handlers --------------------------------------------------------------------------------------
    def load(self, fn: FunctionSpec) -> Callable[[Any, Any], Any]:
        """The handler of the function's first execution environment (created if need be): preflight
        checks that every handler imports; tests reach its warm state through :meth:`module`."""
        pool = self._pool(fn)
        with pool.cond:
            first = pool.all[0] if pool.all else None
        if first is not None:
            return first.handler
        with self._environment(fn) as env:
            return env.handler

    def module(self, fn: FunctionSpec) -> ModuleType:
        """The first environment's handler module (loaded if need be): tests reach its warm state."""
        self.load(fn)
        return self._pool(fn).all[0].module

    def invoke(
        self,
        fn: FunctionSpec,
        event: Any,
        *,
        trigger: str = "invoke",
        outcome_of: Callable[[Any], str] | None = None,
    ) -> Invocation:
        """Invoke synchronously in a free execution environment; the result is JSON round-tripped as
        Lambda's runtime would serialise it.

        ``outcome_of(result)`` words a successful invocation's outcome for the log line (default "ok").
        """
        request_id = str(uuid.uuid4())
        start = time.perf_counter()
        try:
            payload = json.loads(json.dumps(event))
            with self._environment(fn) as env, self._in_environment(fn):
                result = env.handler(payload, LambdaContext(fn, request_id))
            try:
                result = json.loads(json.dumps(result))
            except (TypeError, ValueError) as exc:
                raise _MarshalError(f"Unable to marshal response: {exc}") from exc
            inv = Invocation(fn.logical_id, request_id, (time.perf_counter() - start) * 1000, result=result)
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


@dataclass
class _Environment:
    """One execution environment: its own import of the handler module."""

    module: ModuleType
    handler: Callable[[Any, Any], Any]
    index: int


class _Pool:
    """A function's execution environments: at most ``size``, each running one invocation at a time."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.cond = threading.Condition()
        self.all: list[_Environment] = []
        self.idle: list[_Environment] = []
        self.created = 0  # environments created or being created


class _EnvironmentGate:
    """``os.environ`` shared by the running invocations of one function at a time.

    The first holder sets the function's variables, the last one restores what was there; a holder of
    another function waits until then, and while it waits no new holder of the current function joins
    (so a steady stream of requests cannot starve the other functions). Nothing is restored while any
    invocation or environment creation still runs: no client is created without the endpoint."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: str | None = None
        self._holders = 0
        self._before: dict[str, str | None] = {}
        self._waiting: collections.Counter[str] = collections.Counter()

    def _may_enter(self, owner: str) -> bool:
        if self._holders == 0:
            return True
        return self._owner == owner and not any(n for k, n in self._waiting.items() if k != owner)

    @contextlib.contextmanager
    def hold(self, owner: str, env: dict[str, str]) -> Iterator[None]:
        with self._cond:
            self._waiting[owner] += 1
            try:
                while not self._may_enter(owner):
                    self._cond.wait()
            finally:
                self._waiting[owner] -= 1
            if self._holders == 0:
                self._owner = owner
                self._before = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
            self._holders += 1
        try:
            yield
        finally:
            with self._cond:
                self._holders -= 1
                if self._holders == 0:
                    for k, v in self._before.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                    self._owner, self._before = None, {}
                self._cond.notify_all()


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

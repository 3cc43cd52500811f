"""A Powertools ``Tracer`` that costs nothing at import: the X-Ray SDK is loaded on the first traced call.

Powertools' ``Tracer()`` imports ``aws_xray_sdk`` and patches botocore when it is created (~0.1 s of the
cold start), although nothing is traced before the first invocation. :class:`LazyTracer` offers the
decorators the handlers use (``capture_lambda_handler``, ``capture_method``) and ``put_annotation`` /
``put_metadata``; the real ``Tracer`` (with the same arguments) is created on the first call made while
tracing is active, and never when it is not (``POWERTOOLS_TRACE_DISABLED``, outside Lambda, SAM local:
Powertools' own rule). botocore is patched at class level, so clients created at import are traced too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.tracing.tracer import Tracer  # lazy: this module loads the SDK on first use

F = TypeVar("F", bound=Callable[..., Any])


class LazyTracer:
    """Tracer-compatible; ``Tracer(**kwargs)`` built on the first call that would trace."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    @staticmethod
    def active() -> bool:
        """Powertools' rule, read at call time: Lambda, not SAM local, not ``POWERTOOLS_TRACE_DISABLED``."""
        return not Tracer._is_tracer_disabled()

    def real(self) -> Tracer | None:
        """The Powertools tracer (created now if need be), or None while tracing is not active."""
        if self._tracer is None:
            if not self.active():
                return None
            with self._lock:
                if self._tracer is None:
                    self._tracer = Tracer(**self._kwargs)
        return self._tracer

    def _lazy(self, fn: F, wrap: Callable[[Tracer, F], Callable[..., Any]]) -> F:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            tracer = self.real()
            if tracer is None:
                return fn(*args, **kwargs)
            if not traced:
                traced.append(wrap(tracer, fn))
            return traced[0](*args, **kwargs)

        return call  # type: ignore[return-value]

    def capture_lambda_handler(self, handler: F | None = None, **options: Any) -> Any:
        """As ``Tracer.capture_lambda_handler`` (with or without arguments)."""
        if handler is None:
            return functools.partial(self.capture_lambda_handler, **options)
        return self._lazy(handler, lambda t, f: t.capture_lambda_handler(f, **options))

    def capture_method(self, method: F | None = None, **options: Any) -> Any:
        """As ``Tracer.capture_method`` (synchronous functions, the only kind the handlers have)."""
        if method is None:
            return functools.partial(self.capture_method, **options)
        return self._lazy(method, lambda t, f: t.capture_method(f, **options))

    def put_annotation(self, key: str, value: Any) -> None:
        tracer = self.real()
        if tracer is not None:
            tracer.put_annotation(key, value)

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        tracer = self.real()
        if tracer is not None:
            tracer.put_metadata(key, value, namespace)

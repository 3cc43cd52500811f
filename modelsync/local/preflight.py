"""Checks the local stack makes before it says it is ready: its ports are free, every handler imports.

Each failure is a :class:`StackStartError` whose text is one line a user can act on (the port and the
option that picks another; the handler file and the extra to install), so ``modelsync local`` exits with
it instead of hanging in a server thread or answering every call with 502.
"""

from __future__ import annotations

import errno
import importlib.metadata
import re
import socket
from collections.abc import Iterable
from pathlib import Path

from .runtime import FunctionSpec, Runtime

DISTRIBUTION = "modelsync"
_LOCAL_EXTRA = "local"  # what `modelsync local` needs; named first when a module is in several extras


class StackStartError(RuntimeError):
    """The local stack cannot start; ``str()`` is the one-line reason."""


def listen(host: str, port: int, *, role: str, option: str) -> socket.socket:
    """A listening TCP socket on host:port, or a StackStartError naming ``role`` and ``option``.

    Binding here, in the calling thread, is what lets a taken port fail at once: moto's threaded server
    binds in its own thread and waits forever for a readiness event that a failed bind never sets.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise port_error(exc, host, port, role=role, option=option) from exc


def port_error(exc: OSError, host: str, port: int, *, role: str, option: str) -> StackStartError:
    """What a failed bind of host:port means for the user, in one line."""
    reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
    return StackStartError(
        f"port {port} on {host} for the {role} {reason}: stop what holds it or pass {option} "
        "(0 picks a free port)"
    )


def import_handlers(runtime: Runtime, functions: Iterable[FunctionSpec], root: Path) -> None:
    """Import every handler now, so a missing dependency stops start-up instead of failing each call."""
    for fn in functions:
        try:
            runtime.load(fn)
        except Exception as exc:  # any import-time failure means the function cannot run
            raise StackStartError(import_failure(fn, exc, root)) from exc


def import_failure(fn: FunctionSpec, exc: BaseException, root: Path) -> str:
    """One line: the handler file, what it could not import and, when an extra declares it, the fix."""
    try:
        path, _ = fn.handler_file()
        where = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        where = fn.logical_id
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        extra = extra_providing(exc.name.split(".")[0])
        hint = (f"pip install '{DISTRIBUTION}[{extra}]'" if extra
                else f"no {DISTRIBUTION} extra declares it; add it to {fn.code_dir.name}/requirements.txt")
        return f"{where} cannot import {exc.name}: {hint}"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{where} ({fn.logical_id}) failed to import: {type(exc).__name__}: {message}"


def extra_providing(module: str) -> str | None:
    """The extra of this distribution whose requirements install ``module`` (``local`` first), if any.

    An extra that requires another of this distribution's extras (``modelsync[aws]``) provides what
    that one provides.
    """
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    direct: dict[str, set[str]] = {}  # extra -> distributions it names
    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9._-]+)(\[[^\]]*\])?.*?extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if not match:
            continue
        names = direct.setdefault(match.group(3), set())
        if _normalise(match.group(1)) == _normalise(DISTRIBUTION) and match.group(2):
            names.update(f"[{e.strip()}]" for e in match.group(2)[1:-1].split(","))
        else:
            names.add(_normalise(match.group(1)))

    def provides(extra: str, seen: frozenset[str] = frozenset()) -> bool:
        names = direct.get(extra, set())
        if _normalise(module) in names:
            return True
        return any(provides(n[1:-1], seen | {extra}) for n in names
                   if n.startswith("[") and n[1:-1] not in seen)

    extras = [e for e in direct if provides(e)]
    if not extras:
        return None
    return _LOCAL_EXTRA if _LOCAL_EXTRA in extras else extras[0]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()

"""The whole system on this machine: moto as AWS, the template's resources, the handlers wired to events.

See docs/local-stack.md. :class:`LocalStack` runs it in-process; ``modelsync local`` and
``modelsync invoke`` are the commands.
"""

from __future__ import annotations

from .stack import LocalStack, make_client

__all__ = ["LocalStack", "make_client"]

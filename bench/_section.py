"""The shape every benchmark module outside run.py returns, so `make bench` prints one table.

A module ``bench/<topic>.py`` exposes ``section(quick: bool) -> Section``; ``run.py`` lists it in
``EXTRA_SECTIONS``, runs it after the model benchmarks (``--only <topic>`` runs it alone), adds its targets
to the summary's target table and its body (Markdown) as a numbered section of RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Target:
    """One line of the summary: what is promised, the figure reached, and PASS / FAIL (or a reason)."""

    target: str  # e.g. "cold start: score handler import ≤ 1.5× import boto3"
    figure: str  # e.g. "1.31×" or "212 MB"
    verdict: str  # "PASS", "FAIL", or why it was not measured


@dataclass
class Section:
    title: str  # e.g. "Lambda cold start"
    body: str  # Markdown: method, tables, profile notes for what missed
    targets: list[Target] = field(default_factory=list)


def passed(ok: bool) -> str:
    return "PASS" if ok else "FAIL"

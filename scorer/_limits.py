"""What one document may cost: the limits a document is checked against at load, and its cost per row.

Bytes, depth and array lengths bound what a document *holds*; these bound what it *implies*: the values
one row holds at once while it is scored (a polynomial expansion, a hidden layer, one-hot columns), the
work per row (multiply-adds, tree nodes visited, distances to training rows), the classes, the trees and
their nodes. A document over a limit is refused at load with a problem naming the estimator (its JSON
pointer) and the figure. An allowed document is scored in row blocks sized from its cost, so that one
request never holds more than ``memory_budget`` bytes of intermediates, and a request's rows are capped
by ``max_rows`` (work and result size), not only by count.

Every limit has a default safe for a 2 GB function; the service passes its own (template parameters,
docs/deploy.md "Limits").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

VALUE_BYTES = 8  # float64
# A result value as the service holds it on its way out: the array, a Python float in a list, JSON text.
RESULT_BYTES_PER_VALUE = 64
MIN_BLOCK_ROWS = 64  # a document whose single row needs more than memory_budget / MIN_BLOCK_ROWS is refused


class RowCost(NamedTuple):
    """The cost of scoring one row with one estimator (the largest over its methods).

    ``width``: float64 values one row holds at once at the peak (input, intermediates, temporaries and
    output together); ``work``: elementary operations per row (multiply-adds, comparisons, nodes
    visited); ``out``: values in the row's largest result.
    """

    width: int
    work: int
    out: int

    @property
    def row_bytes(self) -> int:
        return VALUE_BYTES * self.width


@dataclass(frozen=True)
class Limits:
    """Limits of one deployment (``modelsync.service.config.Settings.model_limits`` builds it from the
    environment; the template parameter of each field is named in docs/deploy.md)."""

    memory_budget: int = 256 * 1024 * 1024  # MODEL_MEMORY_BUDGET: intermediates of one request, bytes
    max_width: int = 250_000  # MODEL_MAX_WIDTH: values per row of any output or intermediate
    max_classes: int = 50_000  # MODEL_MAX_CLASSES: classes of one classifier
    max_trees: int = 20_000  # MODEL_MAX_TREES: trees of one ensemble
    max_nodes: int = 2_000_000  # MODEL_MAX_NODES: tree nodes of one document
    max_row_cost: int = 20_000_000  # MODEL_MAX_ROW_COST: operations to score one row
    max_request_cost: int = 2_000_000_000  # MODEL_MAX_REQUEST_COST: rows x cost per row, one request

    def row_problem(self, cost: RowCost) -> str | None:
        """Why one row of this cost is over the limits (None: within them)."""
        if cost.width > self.max_width:
            return (f"scoring holds {cost.width} values per row, over the limit of {self.max_width} "
                    "(MODEL_MAX_WIDTH)")
        max_row_bytes = self.memory_budget // MIN_BLOCK_ROWS
        if cost.row_bytes > max_row_bytes:
            return (f"scoring needs {cost.row_bytes} bytes per row, over the limit of {max_row_bytes} "
                    f"(MODEL_MEMORY_BUDGET / {MIN_BLOCK_ROWS})")
        if cost.work > self.max_row_cost:
            return (f"scoring one row costs {cost.work} operations, over the limit of {self.max_row_cost} "
                    "(MODEL_MAX_ROW_COST)")
        return None

    def block_rows(self, cost: RowCost) -> int:
        """Rows scored at once so that intermediates stay within ``memory_budget``."""
        return max(1, self.memory_budget // max(1, cost.row_bytes))

    def max_rows(self, cost: RowCost, n_features: int) -> int:
        """Most rows one request may score: its work within ``max_request_cost``, its inputs and results
        (held whole while the blocks run) within ``memory_budget``."""
        by_work = self.max_request_cost // max(1, cost.work)
        held = RESULT_BYTES_PER_VALUE * max(1, cost.out) + VALUE_BYTES * max(1, n_features)
        return max(1, min(by_work, self.memory_budget // held))


DEFAULT_LIMITS = Limits()

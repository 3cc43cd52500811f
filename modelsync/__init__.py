"""modelsync: ship scikit-learn models as JSON documents to AWS Lambda and to devices."""

from __future__ import annotations

__version__ = "0.1.0"

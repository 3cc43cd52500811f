"""Domain errors. Each has a stable ``code``; the API maps classes to HTTP statuses in one table
(:data:`modelsync.service.http.errors.ERROR_STATUS`), other callers (Publish, Batch) record the code and
message.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the domain errors: ``code`` is machine readable, the message is safe to show a caller."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """The request is malformed: the message names the field, row or tensor."""

    code = "invalid_request"


class InvalidModelInput(InvalidRequest):
    """Rows or tensors the model cannot score (wrong shape, type, unknown feature)."""

    code = "invalid_input"


class ModelNotFound(ServiceError):
    code = "model_not_found"


class VersionNotFound(ServiceError):
    code = "version_not_found"


class AliasNotFound(ServiceError):
    code = "alias_not_found"


class NoPublishedVersion(ServiceError):
    """The model is known (uploads were seen) but has no version to serve yet."""

    code = "model_unavailable"


class PayloadTooLarge(ServiceError):
    """Over the rows or bytes limit of one request."""

    code = "payload_too_large"


class PreconditionFailed(ServiceError):
    """``If-Match`` did not match the alias revision."""

    code = "precondition_failed"


class Conflict(ServiceError):
    """The request conflicts with the registry's state (e.g. deleting ``latest``)."""

    code = "conflict"


class MethodUnavailable(ServiceError):
    """The model cannot produce a requested output (e.g. predict_proba on a regressor)."""

    code = "output_unavailable"


class ModelUnreadable(ServiceError):
    """A published document could not be loaded or no longer matches its sha256 (operator problem)."""

    code = "model_unreadable"


class SigningNotConfigured(ServiceError):
    """``GET /signing-key`` on a deployment without a manifest signing key."""

    code = "signing_not_configured"


class SigningUnavailable(ServiceError):
    """KMS could not sign (throttled, unreachable, key disabled): better no manifest than an unsigned one."""

    code = "signing_unavailable"

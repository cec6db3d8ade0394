"""One error hierarchy: each class carries its status and code; one handler renders the envelope."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from service import messages


class ApiError(Exception):
    """An answer that is not a success, rendered as `{"error": {"code", "message", "details"?}}`."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalServerError"
    default_message: ClassVar[str] = messages.INTERNAL

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        source: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = dict(headers or {})
        # Where the problem is, as a JSON:API error's `source` (`pointer` into the body, `parameter`,
        # `header`); the envelope does not show it.
        self.source = source
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ApiError):
    status, code, default_message = 400, "BadRequest", messages.EMPTY_BODY


class Unauthorized(ApiError):
    status, code, default_message = 401, "Unauthorized", messages.UNAUTHORIZED


class Forbidden(ApiError):
    status, code, default_message = 403, "Forbidden", messages.FORBIDDEN


class NotFound(ApiError):
    status, code, default_message = 404, "NotFound", "Not found."


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "MethodNotAllowed", "Method not allowed."


class NotAcceptable(ApiError):
    status, code, default_message = 406, "NotAcceptable", "Not acceptable."


class Conflict(ApiError):
    status, code, default_message = 409, "Conflict", "Conflict."


class Gone(ApiError):
    status, code, default_message = 410, "Gone", messages.CHANGES_GONE


class PreconditionFailed(ApiError):
    status, code, default_message = 412, "PreconditionFailed", "The list changed since that ETag."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "PayloadTooLarge", "Body is too large."


class UnsupportedMediaType(ApiError):
    status, code, default_message = 415, "UnsupportedMediaType", "Unsupported media type."


class ValidationFailed(ApiError):
    """422 with Heartcore's `details: {"errors": {"<field>": ["<message>", ...]}}`."""

    status, code, default_message = 422, "ValidationFailed", messages.RELATION_INVALID

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: Mapping[str, Sequence[str]],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.errors = {field: list(found) for field, found in errors.items()}
        super().__init__(message, details={"errors": self.errors}, headers=headers)


class TooManyRequests(ApiError):
    status, code, default_message = 429, "TooManyRequests", "Too many requests."


class ServiceUnavailable(ApiError):
    status, code, default_message = 503, "ServiceUnavailable", messages.UNAVAILABLE

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "2"})


class RelationNotFound(NotFound):
    def __init__(self, relation_id: object) -> None:
        super().__init__(messages.RELATION_NOT_FOUND.format(id=relation_id))


class RelationTypeNotFound(NotFound):
    def __init__(self, alias: str) -> None:
        # No alias is longer than 100 characters; a path of any length must not echo back whole.
        super().__init__(messages.RELATION_TYPE_NOT_FOUND.format(alias=alias[:120]))


def invalid_relation(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(messages.RELATION_INVALID, errors={field: [message]})


def invalid_relation_type(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(messages.RELATION_TYPE_INVALID, errors={field: [message]})

"""Errors of the platform's services, each with an HTTP status and a stable code."""

from __future__ import annotations

from c2m.errors import C2MError


class PlatformError(C2MError):
    """A request the platform refuses; ``status`` is the HTTP status, ``code`` a stable key,
    ``field`` the request field at fault (if one is)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFoundError(PlatformError):
    """Something named in the request does not exist (404)."""

    status = 404
    code = "not_found"


class ConflictError(PlatformError):
    """The request conflicts with the current state: full slot, exhausted quota, duplicate (409)."""

    status = 409
    code = "conflict"


class InvalidError(PlatformError):
    """The request is well formed but not acceptable (422)."""

    status = 422
    code = "invalid"

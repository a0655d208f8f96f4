"""The JSON API's error body, declared once for the OpenAPI schema of every operation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """One invalid field of a request that failed validation."""

    field: str = Field(description="dotted path of the field, e.g. 'screening.adult'")
    message: str


class ErrorDetail(BaseModel):
    """Why the request was refused."""

    status: int = Field(ge=400, le=499, description="the HTTP status again")
    code: str = Field(description="stable key, e.g. slot_full, quota_exhausted, validation_error")
    message: str = Field(description="what is wrong and what to do, in English")
    field: str | None = Field(default=None, description="the request field at fault, when one is")
    problems: list[Problem] | None = Field(default=None, description="every invalid field (validation errors)")


class ErrorOut(BaseModel):
    """The body of every 4xx answer of the JSON API."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorOut,
        "description": "Refused: bad input (400/422), sign in first (401), not allowed (403), not found (404), "
        "conflict with the current state (409), too many requests (429), payment declined (402)",
    }
}

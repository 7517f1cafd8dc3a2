"""The error answer of the Bot API: `{"ok": false, "error_code": N, "description": ...}`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API call that fails the way Telegram would fail it."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 answer: `Bad Request: <detail>`."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """A 403 answer: `Forbidden: <detail>`."""
    return ApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 answer with `parameters.retry_after`, as PTB turns into `RetryAfter`."""
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def chat_not_found() -> ApiError:
    """The answer for an unknown chat id."""
    return bad_request("chat not found")

"""Parameters of one Bot API call, read like Telegram reads them.

A call may carry its parameters in the query string, a JSON body, an urlencoded form or a
multipart form (PTB uses multipart whenever it uploads). In forms every value is a string and
nested objects (`reply_markup`, `media`, `entities`) are JSON-encoded strings, so each value is
converted by the accessor that knows its type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from .errors import bad_request
from .models import JSON


@dataclass
class Upload:
    """A file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


class Params:
    """Typed access to the parameters of one call."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.uploads = uploads or {}

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        """Collect query, JSON, urlencoded and multipart parameters of a request."""
        values: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.method != "POST" or not request.body_exists:
            return cls(values)
        if request.content_type == "application/json":
            body = await _json_body(request)
            values.update(body)
            return cls(values)
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, FileField):
                uploads[key] = _upload(key, value)
            elif isinstance(value, bytes):
                values[key] = value.decode("utf-8", "replace")
            else:
                values[key] = value
        return cls(values, uploads)

    def has(self, name: str) -> bool:
        """True if the parameter was given (an empty string counts as absent)."""
        value = self.values.get(name)
        return value is not None and value != ""

    def text(self, name: str) -> str | None:
        """A string parameter."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def integer(self, name: str) -> int | None:
        """An integer parameter; a malformed one is a Bad Request."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def number(self, name: str) -> float | None:
        """A float parameter; a malformed one is a Bad Request."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Float') from None

    def boolean(self, name: str) -> bool:
        """A boolean parameter; absent means False."""
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)

    def json(self, name: str, error: str = "can't parse JSON object") -> Any:
        """A nested object: JSON text in forms, a native value in JSON bodies."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error) from None

    def upload(self, name: str) -> Upload | None:
        """The uploaded file part with that name."""
        return self.uploads.get(name)

    def logged(self) -> JSON:
        """Parameters for the call log: values as given, uploads described without bytes."""
        data: JSON = {}
        for key, value in self.values.items():
            data[key] = value
        for key, upload in self.uploads.items():
            data[key] = {
                "_upload": upload.filename,
                "mime_type": upload.content_type,
                "size": len(upload.data),
            }
        return data


async def _json_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("can't parse JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("can't parse JSON object")
    return body


def _upload(name: str, value: FileField) -> Upload:
    data = value.file.read()
    return Upload(
        field=name,
        filename=value.filename or name,
        content_type=value.content_type or "application/octet-stream",
        data=data,
    )

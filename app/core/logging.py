"""Structured JSON logs carrying the request id of the request being served."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# the id (never the secret) of the API token the request authenticated with, once it has
token_id_var: ContextVar[str | None] = ContextVar("token_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        token_id = token_id_var.get()
        if token_id is not None:
            entry["token_id"] = token_id
        for key in ("method", "path", "status", "duration_ms", "code"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("rlhf_registry")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False

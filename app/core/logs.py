"""Logging: plain text by default, one JSON object per line with ``BLEND727_LOG_FORMAT=json``.

Every record carries ``request_id``: the id of the request being handled when it was
emitted (``None`` outside one). The id lives in a context variable set by
``RequestContextMiddleware``; asyncio tasks and Starlette's thread pool copy the context, so
records from a sync endpoint, a dependency or a background task after the response carry it
too.

A JSON line has ``time`` (ISO-8601 UTC), ``level``, ``logger``, ``message``, ``request_id``
and every ``extra={...}`` field of the call (``role``, ``message_type``, ``reason``…), plus
``exception`` when there is one. Nothing here adds secrets to a record; callers never log
keys or tokens (tests/test_operations.py checks a launch, a score sent and a rotation).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("blend727_request_id", default=None)

_MARK = "_blend727"
# Attributes every LogRecord has: what is left on a record are the call's ``extra`` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


def _install_record_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in extra_fields(record).items():
            body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.__dict__["rid"] = f" [{rid}]" if rid else ""
        try:
            return super().format(record)
        finally:
            del record.__dict__["rid"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """One handler of ours on the root logger (replaced, not added again, on a second call).

    Text, like ``logging.basicConfig``, leaves a root logger that something else (a test
    runner, an embedding program) already equipped as it is; JSON always takes over."""
    _install_record_factory()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    json_lines = log_format == "json"
    logging.getLogger("uvicorn.access").disabled = json_lines
    if not json_lines and root.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if json_lines:
        # uvicorn's own loggers go through the root handler (the CLI passes log_config=None);
        # the access line comes from RequestContextMiddleware (the route, not the URL).
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True

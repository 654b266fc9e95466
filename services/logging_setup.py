"""Logging for every entry point: one handler on the root logger, plain text or JSON lines.

``configure_logging(settings)`` is called by every command of ``materials`` and by api/asgi.py;
each line names its time (UTC), level and logger, and the request it belongs to when there is one.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import TextIO

from services.config import Settings

# The id of the HTTP request being answered (set by api/request_id.py); None outside requests.
REQUEST_ID: ContextVar[str | None] = ContextVar("materials_request_id", default=None)

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "exception"}
# Record attributes never written as JSON fields besides the stdlib's: the text format's, and
# uvicorn's copy of its message with terminal colour codes.
_NOT_FIELDS = ("taskName", "request", "color_message")
# Libraries that log every request or migration step at INFO: their warnings are kept, their
# chatter only at DEBUG.
_CHATTY = ("alembic", "elastic_transport", "httpx", "httpcore")


class _RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record passing the handler, from whichever logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request = f" [{request_id}]" if request_id else ""
        return super().format(record)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when the line is written (click's test runner and
    pytest swap it), never to a stream that has since been closed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _utc_iso(formatter: logging.Formatter) -> logging.Formatter:
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``MATERIALS_LOG_FORMAT``: ``text`` or ``json`` (one object a line)."""
    if log_format == "json":
        # Imported here: a server logging plain text does not keep the JSON logger in memory.
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.json import JsonFormatter

        return _utc_iso(
            JsonFormatter(
                _JSON_FIELDS,
                rename_fields=_JSON_NAMES,
                reserved_attrs=[*RESERVED_ATTRS, *_NOT_FIELDS],
                json_ensure_ascii=False,
            )
        )
    return _utc_iso(_TextFormatter(_TEXT_FORMAT))


def configure_logging(settings: Settings) -> None:
    """Send every logger's records (``materials.*``, uvicorn's, libraries') to standard error
    in the configured format and level; calling it again replaces what it set before."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(make_formatter(settings.log_format))
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _CHATTY:
        quiet = settings.log_level != "DEBUG"
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    # uvicorn's loggers keep no handlers of their own (it is run with log_config=None): their
    # lines go through the handler above like every other.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

"""Structured logs: one JSON object per line on stderr.

The host reads the worker's stderr, parses each line and re-logs it at its
level with its fields, so worker logs land in the app's own logger (pino)
instead of being opaque text. Anything that is not JSON (a C extension
writing to stderr) still reaches the host as a plain line.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import threading
import types
from typing import Any, Final

_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LEVEL_NAMES: Final = tuple(_LEVELS)

# Attributes every LogRecord has; anything else was passed with `extra=` and
# becomes a field of its own.
_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "msg", "worker_id", ...extra}`` per record."""

    def __init__(self, worker_id: str) -> None:
        super().__init__()
        self._worker_id = worker_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "worker_id": self._worker_id,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, ensure_ascii=False, allow_nan=False, default=repr)
        except ValueError:  # a NaN in an extra field: keep the line valid JSON
            return json.dumps({key: repr(value) for key, value in entry.items()}, ensure_ascii=False)


def configure_logging(level: str, worker_id: str) -> None:
    """Route all logging (warnings and uncaught thread errors included) to JSON lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(worker_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    exc_info: tuple[type[BaseException], BaseException, types.TracebackType | None] | None = (
        (args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value is not None else None
    )
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("snakepit.worker").error("uncaught exception in thread %s", thread, exc_info=exc_info)

"""Log lines with stable fields, as plain text (default) or one JSON object per line.

Fields a line may carry: ``event_id``, ``event``, ``channel``, ``delivery_id``,
``attempt``, ``reason``. Pass them with ``extra={...}``; they are appended as
``key=value`` in text mode and as keys in JSON mode. No secret is ever passed in.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from .safe_text import escape_unsafe

FIELDS = ("event_id", "event", "channel", "delivery_id", "attempt", "reason")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{name}={getattr(record, name)!r}" if name == "reason"
                          else f"{name}={getattr(record, name)}"
                          for name in FIELDS if hasattr(record, name))
        # What a webhook sent (an event name, a reason) is shown escaped: it cannot
        # recolour, retitle or reverse the operator's terminal.
        return escape_unsafe(f"{line} {extras}" if extras else line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return escape_unsafe(json.dumps(entry, ensure_ascii=False, default=str), as_json=True)


def setup(log_format: str = "text", level: str = "INFO") -> None:
    """Send notifybot's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

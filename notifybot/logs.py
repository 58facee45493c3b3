"""Log lines with stable fields, as plain text (default) or one JSON object per line.

Fields a line may carry: ``event_id``, ``event``, ``channel``, ``delivery_id``,
``attempt``, ``reason``. Pass them with ``extra={...}``; they are appended as
``key=value`` in text mode and as keys in JSON mode. No secret is ever passed in.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from .safe_text import escape_unsafe

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")
_NEEDS_QUOTES = re.compile(r'[\s"=\\]')
FIELDS = ("event_id", "event", "channel", "delivery_id", "attempt", "reason")


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value...``: one record, one line.

    Message and fields may hold payload text (an event name), so control characters
    are escaped and a field value with spaces, quotes or ``=`` is quoted: a payload
    can neither start a line of its own nor pass for another field. Only a
    traceback, appended after the line, spans several lines.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extras = " ".join(f"{name}={_field(getattr(record, name), quote=name == 'reason')}"
                          for name in FIELDS if hasattr(record, name))
        if extras:
            line = f"{line} {extras}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        # What a webhook sent is shown escaped: it cannot recolour, retitle or reverse
        # the operator's terminal (bidi controls included).
        return escape_unsafe(line)


def escape(text: str) -> str:
    """``text`` with every control character (and line separator) as a visible escape."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _field(value: object, *, quote: bool) -> str:
    text = str(value)
    if quote or not text or _NEEDS_QUOTES.search(text):
        text = json.dumps(text, ensure_ascii=False)  # escapes quotes, backslashes, C0
    return escape(text)


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
        line = escape_unsafe(json.dumps(entry, ensure_ascii=False, default=str), as_json=True)
        # JSON leaves these raw, and some readers (Python's splitlines) break lines at them.
        return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def setup(log_format: str = "text", level: str = "INFO") -> None:
    """Send notifybot's logs to stderr in the chosen format."""
    # Neither format shows a line's source, thread, process or task, so none is looked
    # up: the logging HOWTO's "Optimization" settings, a seventh of a line's cost.
    logging._srcfile = None  # named so in that HOWTO
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

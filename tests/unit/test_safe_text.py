"""What a webhook sent cannot act on a terminal: names stored clean, log lines escaped."""

from __future__ import annotations

import json
import logging

from notifybot.events import event_name, parse_event
from notifybot.logs import JsonFormatter, TextFormatter

HOSTILE = "job.updated\x1b[31m\x1b]0;title\x07\u202eevil\x9b2J\r"


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("notifybot", logging.INFO, __file__, 1, "accepted %s", ("x\x1b[2J",),
                            None)
    rec.__dict__.update(extra)
    return rec


def test_text_lines_show_controls_and_bidi_escaped() -> None:
    line = TextFormatter().format(record(event=HOSTILE, event_id=1))
    assert line.isprintable()
    assert "accepted x\\x1b[2J" in line
    # The field is quoted (it holds what a webhook sent) and every control shown escaped.
    assert ('event="job.updated\\u001b[31m\\u001b]0;title\\u0007\\u202eevil\\x9b2J\\r"'
            in line)


def test_json_lines_stay_json_with_everything_escaped() -> None:
    line = JsonFormatter().format(record(event=HOSTILE, event_id=1))
    assert line.isprintable()
    entry = json.loads(line)
    assert entry["event"] == HOSTILE and entry["message"] == "accepted x\x1b[2J"
    assert "£" in JsonFormatter().format(record(event="£")), "other text stays as it is"


def test_event_names_are_stored_and_matched_clean() -> None:
    # The name is what ingest stores and what `deliveries` and the logs list.
    assert event_name({"event": "job.updated\x1b[2J\u202e"}) == "job.updated"
    assert event_name({"event": "\x07\u202e"}) == "unknown"
    assert parse_event({"event": " job.\x00updated "}).name == "job.updated"

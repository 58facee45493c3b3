"""Log lines: payload text can neither forge a line nor pass for another field."""

from __future__ import annotations

import json
import logging

import pytest

from notifybot.logs import JsonFormatter, TextFormatter

FORGED = "job.updated\n2026-05-12 13:04:17,000 INFO notifybot.app: reload accepted"


def record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("notifybot.pipeline", logging.INFO, __file__, 1, message, args, None)
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry


@pytest.mark.parametrize("name", [FORGED, "a\rb", "a\x1b[2Jb", "a\u2028b", "a\x85b", "a\x00b"])
def test_a_payload_field_cannot_make_a_second_line(name: str) -> None:
    line = TextFormatter().format(record("accepted %s", name, event=name, event_id=7))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\x85" not in line
    assert "\x1b" not in line and "\x00" not in line
    assert line.count(" event=") == 1


def test_a_payload_field_cannot_pass_for_another_field() -> None:
    line = TextFormatter().format(record("accepted", event="job.x reason=forged", event_id=1))
    assert 'event="job.x reason=forged"' in line
    assert " reason=forged" not in line.replace('"job.x reason=forged"', "")


def test_plain_fields_stay_plain() -> None:
    line = TextFormatter().format(record("accepted", event="job.updated", event_id=3))
    assert line.endswith("accepted event_id=3 event=job.updated")


def test_a_traceback_still_spans_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        entry = record("failed")
        entry.exc_info = sys.exc_info()
    text = TextFormatter().format(entry)
    assert text.splitlines()[0].endswith("failed")
    assert "ValueError: boom" in text


def test_json_lines_escape_control_characters() -> None:
    line = JsonFormatter().format(record("accepted %s", FORGED, event=FORGED))
    assert "\n" not in line
    assert json.loads(line)["event"] == FORGED


def test_json_lines_escape_unicode_line_breaks() -> None:
    name = "a\u2028b\x85c"
    line = JsonFormatter().format(record("accepted", event=name))
    assert len(line.splitlines()) == 1
    assert json.loads(line)["event"] == name

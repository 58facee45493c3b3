"""parse_event: HireHop's loosely typed payloads become one Event shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifybot.events import UNKNOWN_EVENT, Change, job_number, parse_event, parse_time, to_int

SAMPLES = Path("/work/shared/samples/hirehop")


def sample(name: str) -> dict[str, object]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (15471, 15471),
        ("15471", 15471),
        (15471.0, 15471),
        ("15471.0", 15471),
        ("j15471", 15471),
        ("p77", 77),
        ("e9336", 9336),
        (" 42 ", 42),
        (15471.5, None),
        ("15471.5", None),
        ("abcd1", None),
        ("", None),
        (None, None),
        (True, None),
        ([1], None),
    ],
)
def test_to_int_accepts_hirehop_spellings_of_a_number(value: object, expected: int | None) -> None:
    assert to_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-12 13:04:17", datetime(2026, 5, 12, 13, 4, 17, tzinfo=UTC)),
        ("2026-05-12 13:04", datetime(2026, 5, 12, 13, 4, tzinfo=UTC)),
        ("2026-05-12T13:04:17", datetime(2026, 5, 12, 13, 4, 17, tzinfo=UTC)),
        ("2026-05-12T14:04:17+01:00", datetime(2026, 5, 12, 13, 4, 17, tzinfo=UTC)),
        (" 2026-05-12 13:04:17 ", datetime(2026, 5, 12, 13, 4, 17, tzinfo=UTC)),
        ("2026-5-12 9:04:17", datetime(2026, 5, 12, 9, 4, 17, tzinfo=UTC)),  # not ISO, still read
        ("0001-01-01T00:00:00+05:00", None),  # before year 1 in UTC
        ("2026-02-30 10:00:00", None),
        ("yesterday", None),
        ("", None),
        (1715519057, None),
        (None, None),
    ],
)
def test_parse_time_reads_utc_envelope_times(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"event": "job.updated", "job": 5, "data": {"NUMBER": 6, "ID": "j7"}}, 5),
        ({"event": "job.updated", "job": "0", "data": {"NUMBER": "6", "ID": "j7"}}, 6),
        ({"event": "job.updated", "data": {"ID": "j7", "job": 8}}, 7),
        ({"event": "job.updated", "data": {"job": "8.0"}}, 8),
        ({"event": "job.updated", "data": {}}, None),
        ({"event": "invoice.status.updated", "data": {"ID": 12841, "NUMBER": 9}}, None),
        ({"event": "invoice.status.updated", "data": {"ID": 12841, "JOB_ID": 16757}}, 16757),
        ({"event": "invoice.status.updated", "data": {"MAIN_ID": "16757"}}, 16757),
        ({"event": "invoice.status.updated", "job": 3, "data": {"JOB_ID": 4}}, 3),
        ({"event": "contact.updated", "data": {"ID": 99}}, None),
    ],
)
def test_job_number_resolution_order(payload: dict[str, object], expected: int | None) -> None:
    data = payload["data"]
    assert isinstance(data, dict)
    assert job_number(payload, data) == expected


def test_job_status_sample_parses_to_typed_fields() -> None:
    event = parse_event(sample("job.status.updated.constructed"))
    assert event.name == "job.status.updated"
    assert event.job == 15471
    assert event.company_id == 42
    assert event.user_name == "Sam Taylor"
    assert event.time == datetime(2026, 5, 12, 13, 4, 17, tzinfo=UTC)
    assert event.change("STATUS") == Change("STATUS", "1", "2")
    assert event.data["JOB_NAME"] == "Summer Tour 2026 ► Glasgow backline"


def test_export_key_is_dropped_from_the_payload() -> None:
    event = parse_event(sample("invoice.status.updated"))
    assert "export_key" not in event.payload
    assert "22u43mrjwe7u" not in repr(event)


@pytest.mark.parametrize("name", [None, "", "   ", 42])
def test_missing_or_odd_event_name_becomes_unknown(name: object) -> None:
    assert parse_event({"event": name}).name == UNKNOWN_EVENT


def test_event_name_is_stripped() -> None:
    assert parse_event({"event": " job.created \n"}).name == "job.created"


@pytest.mark.parametrize("data", [None, "x", [1, 2], 5])
def test_non_table_data_becomes_empty(data: object) -> None:
    assert dict(parse_event({"event": "job.created", "data": data}).data) == {}


@pytest.mark.parametrize("changes", [None, "x", [1], 0])
def test_non_table_changes_become_empty(changes: object) -> None:
    assert parse_event({"event": "job.updated", "changes": changes}).changes == ()


def test_bare_change_value_is_the_new_value() -> None:
    event = parse_event({"event": "job.status.updated", "changes": {"STATUS": 2}})
    assert event.change("STATUS") == Change("STATUS", None, 2)


def test_change_returns_none_for_an_unchanged_field() -> None:
    assert parse_event(sample("job.updated.constructed")).change("STATUS") is None


def test_changes_keep_payload_order() -> None:
    event = parse_event(sample("job.updated.constructed"))
    assert [c.field for c in event.changes] == ["JOB_NAME", "JOB_END"]


def test_event_payload_and_data_are_read_only() -> None:
    event = parse_event(sample("job.created.constructed"))
    with pytest.raises(TypeError):
        event.data["JOB_NAME"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        event.payload["event"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [({"company_id": "42"}, 42), ({"company_id": 42.0}, 42), ({"company_id": "x"}, None), ({}, None)],
)
def test_company_id_is_coerced(payload: dict[str, object], expected: int | None) -> None:
    assert parse_event(payload).company_id == expected


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.json")))
def test_every_sample_parses(name: str) -> None:
    event = parse_event(sample(name))
    assert event.name == sample(name)["event"]
    assert event.time is not None

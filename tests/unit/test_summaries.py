"""Many events, one message: a folded burst of one job, and a digest of a window."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifybot.events import parse_event
from notifybot.formatting import FORMATTERS
from notifybot.matching import Digest
from notifybot.rendering import Renderer
from notifybot.statuses import StatusLabels
from notifybot.summaries import DIGEST_LINES, Rendered, digest, fold, gathered

LONDON = ZoneInfo("Europe/London")
RENDERER = Renderer(labels=StatusLabels(), timezone=LONDON, base_url="https://myhirehop.com")


def rendered(payload: dict[str, Any]) -> Rendered:
    event = parse_event({"user_name": "Sam Taylor", "time": "2026-12-01 16:31:00", **payload})
    return Rendered(event, RENDERER.render(event))


def job_change(job: int, changes: dict[str, Any], event: str = "job.updated") -> Rendered:
    return rendered({"event": event, "job": job,
                     "data": {"NUMBER": job, "JOB_NAME": "Summer Tour", "STATUS": 2},
                     "changes": changes})


def invoice_paid(number: int, job: int) -> Rendered:
    return rendered({"event": "invoice.status.updated", "job": job,
                     "data": {"NUMBER": f"INV-{number}", "STATUS": 3, "JOB_ID": job,
                              "NET": "100.00"},
                     "changes": {"STATUS": {"from": 2, "to": 3}}})


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


def test_a_burst_folds_into_one_message_naming_every_change_latest_status_first() -> None:
    burst = [
        job_change(15471, {"STATUS": {"from": 1, "to": 2}}, "job.status.updated"),
        job_change(15471, {"VENUE": {"from": "Hall", "to": "Barrowland"}}),
        job_change(15471, {"OUT_DATE": {"from": "2026-06-09 09:00:00",
                                        "to": "2026-06-10 09:00:00"}}),
    ]
    message = fold(burst)
    assert message.summary == burst[0].message.summary + " (3 updates: Status, Out, Venue)"
    assert "Booked" in message.summary
    assert [c.field for c in message.changes] == ["Status", "Out", "Venue"]
    assert message.link == "https://myhirehop.com/job.php?id=15471"
    for kind, format_message in FORMATTERS.items():
        text = str(format_message(message))
        assert "Booked" in text, kind
        assert all(name in text for name in ("Out", "Venue", "Status")), kind


def test_a_later_status_change_leads_the_fold() -> None:
    burst = [
        job_change(15471, {"STATUS": {"from": 1, "to": 2}}, "job.status.updated"),
        job_change(15471, {"STATUS": {"from": 2, "to": 5}}, "job.status.updated"),
        job_change(15471, {"VENUE": {"from": "Hall", "to": "Barrowland"}}),
    ]
    message = fold(burst)
    assert message.summary == burst[1].message.summary + " (3 updates: Status, Venue)"
    assert "→ Dispatched" in message.summary
    assert [(c.field, c.after) for c in message.changes] == [
        ("Status", "Dispatched"), ("Status", "Booked"), ("Venue", "Barrowland")]


def test_one_event_folds_into_its_own_message() -> None:
    single = job_change(1, {"VENUE": {"from": "A", "to": "B"}})
    assert fold([single]) == single.message
    with pytest.raises(ValueError, match="nothing"):
        fold([])


def test_a_digest_counts_what_happened_since_the_window_opened() -> None:
    paid = [invoice_paid(n, 15000 + n) for n in range(5)]
    message = digest(paid, local("2026-12-01 16:30"), local("2026-12-01 17:30"), LONDON)
    assert message.summary == "5 invoices paid since 16:30"
    assert len(message.notes) == 5
    for n, line in enumerate(message.notes):
        assert line.startswith("• ") and line.endswith(f"https://myhirehop.com/job.php?id={15000 + n}")
    assert message.link is None  # five jobs: each line has its own


def test_a_digest_groups_by_what_happened_largest_group_first() -> None:
    items = [job_change(1, {"STATUS": {"from": 1, "to": 2}}, "job.status.updated"),
             invoice_paid(1, 1), invoice_paid(2, 2), job_change(3, {"VENUE": {"from": "", "to": "X"}})]
    message = digest(items, local("2026-11-30 17:30"), local("2026-12-01 17:30"), LONDON)
    assert message.summary == ("4 updates since 17:30: 2 invoices paid, 1 job booked, "
                               "1 job updated")
    assert message.notes[0] == "2 invoices paid:" and message.notes[3] == "1 job booked:"
    text = FORMATTERS["telegram"](message)["text"]
    assert "2 invoices paid:" in text and "job.php?id=3" in text


def test_a_long_digest_lists_the_first_lines_and_counts_the_rest() -> None:
    many = [invoice_paid(n, n + 1) for n in range(DIGEST_LINES + 7)]
    message = digest(many, local("2026-11-23 00:00"), local("2026-11-30 00:00"), LONDON)
    assert message.summary == f"{len(many)} invoices paid since Mon 23 Nov, 00:00"
    assert message.notes[-1] == "… and 7 more"
    assert len(FORMATTERS["slack"](message)["blocks"][1]["text"]["text"]) <= 3000


def test_unknown_events_are_digested_by_name() -> None:
    items = [rendered({"event": "contact.created", "data": {"NAME": "Jo"}}) for _ in range(2)]
    message = digest(items, local("2026-12-01 16:00"), local("2026-12-01 17:00"), LONDON)
    assert message.summary == "2 × contact.created since 16:00"
    with pytest.raises(ValueError, match="empty window"):
        digest([], 0, 1, LONDON)


def test_a_gathering_delivery_renders_as_its_key_says() -> None:
    start = local("2026-12-01 16:00")
    paid = [invoice_paid(1, 1), invoice_paid(2, 2)]
    hourly = gathered(f"digest:accounts:s1:{start:.0f}", paid, Digest(every=3600), LONDON)
    assert hourly.summary == "2 invoices paid since 16:00"
    burst = [job_change(7, {"VENUE": {"from": "A", "to": "B"}}),
             job_change(7, {"VENUE": {"from": "B", "to": "C"}})]
    assert gathered("fold:ops:s1:42:7", burst, None, LONDON) == fold(burst)

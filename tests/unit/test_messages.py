"""What people see, per channel kind: the exact words for the shipped samples and odd events.

Rendered as ``notifybot serve`` renders them with ``currency = "GBP"``; every Slack
payload is checked against Block Kit's limits and every Telegram text is parsed
the way Telegram parses it (the stand-in's parser).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifybot.events import parse_event
from notifybot.formatting import FORMATTERS
from notifybot.money import MoneyFormat
from notifybot.rendering import Renderer
from notifybot.statuses import StatusLabels
from tests.standins.telegram_html import parse_html

SHARED = Path("/work/shared/samples/hirehop")
OURS = Path(__file__).resolve().parents[2] / "samples"
RENDERER = Renderer(labels=StatusLabels(), timezone=ZoneInfo("Europe/London"),
                    base_url="https://myhirehop.com", money=MoneyFormat("GBP"))
# Terminal escapes, C0/C1 controls and bidi overrides: never in anything a channel gets.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def render(body: dict[str, Any]) -> dict[str, Any]:
    """Every channel kind's payload for one webhook body."""
    message = RENDERER.render(parse_event(body))
    return {kind: fmt(message) for kind, fmt in FORMATTERS.items()}


def seen(body: dict[str, Any]) -> dict[str, str]:
    """The words a person sees first in each channel."""
    out = render(body)
    return {
        "console": out["console"]["text"],
        "slack": out["slack"]["blocks"][0]["text"]["text"],
        "slack_text": out["slack"]["text"],
        "telegram": telegram_visible(out["telegram"]["text"]),
        "subject": out["email"]["subject"],
        "email": out["email"]["text"],
    }


def telegram_visible(text: str) -> str:
    visible, _ = parse_html(text)  # raises on markup Telegram would refuse
    return visible


def slack_problems(payload: dict[str, Any]) -> list[str]:
    """Block Kit's limits (what Slack answers ``invalid_blocks`` to), as a list of problems."""
    problems = []
    blocks = payload["blocks"]
    if not 1 <= len(blocks) <= 50:
        problems.append("blocks")
    if not payload["text"] or len(payload["text"]) > 3000:
        problems.append("text")
    for block in blocks:
        kind, text = block["type"], block.get("text", {})
        if kind == "header" and (text["type"] != "plain_text" or not 1 <= len(text["text"]) <= 150):
            problems.append("header")
        if kind == "section" and text and not 1 <= len(text["text"]) <= 3000:
            problems.append("section text")
        fields = block.get("fields", [])
        if len(fields) > 10 or any(not 1 <= len(f["text"]) <= 2000 for f in fields):
            problems.append("fields")
        for element in block.get("elements", []):
            if element["type"] == "button" and (len(element["text"]["text"]) > 75
                                                or len(element["url"]) > 3000):
                problems.append("button")
            if kind == "context" and not 1 <= len(element["text"]) <= 3000:
                problems.append("context")
    return problems


def every_string(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in every_string(v)]
    if isinstance(value, list):
        return [s for v in value for s in every_string(v)]
    return []


SAMPLES = sorted([*SHARED.glob("*.json"), *OURS.glob("*.json")])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_is_accepted_by_every_channel(path: Path) -> None:
    out = render(load(path))
    assert slack_problems(out["slack"]) == []
    visible = telegram_visible(out["telegram"]["text"])
    assert len(visible) <= 4096
    assert "\n" not in out["email"]["subject"] and len(out["email"]["subject"]) <= 200
    assert "\n" not in out["console"]["text"]
    for text in every_string(out):
        assert not UNSAFE.search(text)
        assert "None" not in text and "{'" not in text and '{"' not in text


# --- the shipped samples, channel by channel ---------------------------------------------


def test_job_status_sample() -> None:
    words = seen(load(SHARED / "job.status.updated.constructed.json"))
    line = ('Job 15471 "Summer Tour 2026 ► Glasgow backline" (Northern Lights Touring Ltd): '
            "Provisional → Booked, by Sam Taylor")
    assert words["console"] == words["slack"] == words["slack_text"] == line
    assert words["subject"] == line
    assert words["telegram"] == (
        f"{line}\n\n"
        "Client: Alex Morgan\nClient ref: PO-4471\nVenue: Barrowland Ballroom\n"
        "Out: Wed 10 Jun 2026, 09:00\nStarts: Thu 11 Jun 2026, 09:00\n"
        "Ends: Sun 14 Jun 2026, 22:00\nReturns: Mon 15 Jun 2026, 10:00\nManager: Sam Taylor\n\n"
        "What changed\n• Status: Provisional → Booked\n\n"
        "Sam Taylor · Tue 12 May 2026, 14:04 BST\nOpen job 15471 in HireHop")


def test_job_status_sample_in_slack() -> None:
    payload = render(load(SHARED / "job.status.updated.constructed.json"))["slack"]
    assert [b["type"] for b in payload["blocks"]] == [
        "header", "section", "section", "context", "actions"]
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[:3] == ["*Client*\nAlex Morgan", "*Client ref*\nPO-4471",
                          "*Venue*\nBarrowland Ballroom"]
    assert not any(f.startswith(("*When*", "*Company*")) for f in fields), "said elsewhere"
    assert payload["blocks"][2]["text"]["text"] == "*What changed*\n• *Status*: Provisional → Booked"
    assert payload["blocks"][3]["elements"][0]["text"] == "Sam Taylor · Tue 12 May 2026, 14:04 BST"
    button = payload["blocks"][4]["elements"][0]
    assert (button["text"]["text"], button["url"]) == (
        "Open job 15471 in HireHop", "https://myhirehop.com/job.php?id=15471")


def test_job_updated_sample() -> None:
    words = seen(load(SHARED / "job.updated.constructed.json"))
    assert words["console"] == (
        'Job 15471 "Summer Tour 2026 ► Glasgow backline + PA" (Northern Lights Touring Ltd) '
        "updated by Sam Taylor: Job name, Ends")
    assert words["subject"] == words["console"]
    assert "Status: Booked\n" in words["telegram"]
    assert "\nEnds:" not in words["telegram"], "a changed field is shown once, as a change"
    assert words["email"].split("What changed:\n")[1].startswith(
        "  Job name: Summer Tour 2026 ► Glasgow backline → Summer Tour 2026 ► Glasgow backline + PA\n"
        "  Ends: Sun 14 Jun 2026, 22:00 → Mon 15 Jun 2026, 22:00\n")


def test_job_created_sample() -> None:
    words = seen(load(SHARED / "job.created.constructed.json"))
    assert words["console"] == (
        'New Job 15502 "Corporate AV – Café launch" (Bean & Leaf Cafés) as Enquiry, '
        "created by Priya Shah")
    assert words["slack_text"] == words["console"].replace("&", "&amp;")
    assert "Sharepoint project: 1\n" in words["telegram"], "custom fields by their labels"
    assert "Money" not in words["telegram"], "HireHop's MONEY is not the job's value"


def test_invoice_sample_shows_the_total() -> None:
    words = seen(load(SHARED / "invoice.status.updated.constructed.json"))
    line = "Invoice OT-INV-12245: Draft → Approved (by Sam Taylor) · £1,008.00"
    assert words["console"] == words["slack"] == words["subject"] == line
    assert words["email"] == (
        f"{line}\n\nJob: 16757\nNet: £840.00\nTax: £168.00\nDue: Sun 25 Oct 2026\n"
        "Tax point: Fri 25 Sep 2026, 00:00\n\nWhat changed:\n  Status: Draft → Approved\n\n"
        "By: Sam Taylor\nWhen: Fri 25 Sep 2026, 10:53 BST\n\n"
        "Open job 16757 in HireHop: https://myhirehop.com/job.php?id=16757\n")


def test_invoice_paid_with_client_and_currency() -> None:
    words = seen(load(OURS / "invoice.paid.constructed.json"))
    line = "Invoice OT-INV-12245: Approved → Paid (by Lisa Green) · £1,008.00 · Northern Lights"
    assert words["console"] == words["slack"] == words["subject"] == line


def test_verbatim_doc_example_names_its_placeholder_change() -> None:
    words = seen(load(SHARED / "invoice.status.updated.json"))
    assert words["slack"] == "Invoice (no number) updated by John Smith: Field name"
    assert words["console"] == "Invoice (no number) updated by John Smith: Field name old → new"


def test_payment_sample() -> None:
    words = seen(load(OURS / "payment.created.constructed.json"))
    line = "Payment £1,008.00 received for INV-0077 (job 16757) by Lisa Green"
    assert words["console"] == words["slack"] == words["subject"] == line
    assert words["telegram"] == (
        f"{line}\n\nMethod: BACS\nDate: Mon 28 Sep 2026\nReference: NLT-SEP-PAY\n\n"
        "Lisa Green · Mon 28 Sep 2026, 15:12 BST\nOpen job 16757 in HireHop")


def test_contact_person_sample() -> None:
    words = seen(load(OURS / "contact.person.updated.constructed.json"))
    assert words["slack"] == "Contact Alex Morgan updated by Sam Taylor: Email"
    assert words["telegram"] == (
        "Contact Alex Morgan updated by Sam Taylor: Email\n\n"
        "Company: Northern Lights Touring Ltd\nTelephone: 0141 496 0000\n"
        "Address: 12 Tour Bus Lane Glasgow\nPreferred contact: Email\n\n"
        "What changed\n"
        "• Email: alex@northernlights.example → alex.morgan@northernlights.example\n\n"
        "Sam Taylor · Mon 28 Sep 2026, 15:12 BST")


def test_contact_company_sample_without_a_user_name() -> None:
    words = seen(load(OURS / "contact.company.created.constructed.json"))
    assert words["console"] == "Company Bean & Leaf Cafés created by priya@example-hire.co.uk"
    assert words["telegram"].split("\n\n")[1] == (
        "Email: accounts@beanleaf.example\nTelephone: 020 7946 0000\n"
        "Credit limit: £5,000.00\nOn hold: No\nTags: catering, corporate")


def test_stock_item_sample_console_carries_the_values() -> None:
    words = seen(load(OURS / "stock.item.updated.constructed.json"))
    assert words["console"] == "Stock item Shure SM58 updated by Priya Nair: Qty 4 → 2"
    assert words["slack"] == "Stock item Shure SM58 updated by Priya Nair: Qty"
    assert "• Qty: 4 → 2" in words["telegram"]


# --- forty changes and a cancellation ----------------------------------------------------


def test_cancellation_among_forty_changes_comes_first_and_is_never_cut() -> None:
    body = load(OURS / "job.updated.cancelled.constructed.json")
    out = render(body)
    words = seen(body)
    for first in (words["console"], words["slack"], words["slack_text"], words["subject"]):
        assert ": Booked → Cancelled, by Sam Taylor (also Note 1, Note 2, Note 3 and 36 more)" in first
    assert words["slack"] == (
        'Job 15471 "Summer Tour 2026 ► Glasgow…" (Northern Lights Touring Ltd): '
        "Booked → Cancelled, by Sam Taylor (also Note 1, Note 2, Note 3 and 36 more)")
    changes = out["slack"]["blocks"][1]["text"]["text"]
    assert changes.startswith("*What changed*\n• *Status*: Booked → Cancelled\n• *Note 1*: ")
    assert changes.endswith("\n…and 30 more")
    assert words["telegram"].split("What changed\n")[1].startswith("• Status: Booked → Cancelled\n")
    assert "\n…and 30 more\n\nSam Taylor" in words["telegram"]
    assert "  Status: Booked → Cancelled\n  Note 1:" in words["email"]
    assert "  …and 15 more\n" in words["email"]


def test_huge_values_and_many_changes_stay_within_every_limit() -> None:
    changes = {f"NOTE_{i}": {"from": "x" * 3000, "to": "é&<" * 1000} for i in range(60)}
    body = {"event": "job.updated", "job": 1, "user_name": "U" * 500,
            "data": {"JOB_NAME": "N" * 5000, "COMPANY": "C" * 5000,
                     **{f"F{i}": "v" * 3000 for i in range(30)}},
            "changes": {**changes, "STATUS": {"from": 1, "to": 9}}}
    out = render(body)
    assert slack_problems(out["slack"]) == []
    assert len(telegram_visible(out["telegram"]["text"])) <= 4096
    for text in (out["console"]["text"], out["email"]["subject"],
                 out["slack"]["blocks"][0]["text"]["text"]):
        assert "Provisional → Cancelled" in text


# --- readable values ---------------------------------------------------------------------


ODD = {
    "event": "job.updated", "job": 7, "user_name": None, "user_email": "",
    "time": "2026-01-05 09:30:00",
    "data": {"JOB_NAME": "Gig", "STATUS": "14", "OUT_DATE": "0000-00-00 00:00:00",
             "CUSTOM_FIELDS": '{"po_number": {"value": "PO-1"}, "crew": {"value": ""}}',
             "LOCKED": 1},
    "changes": {"VENUE": {"from": "Barrowland", "to": ""},
                "INTERNAL": {"from": False, "to": True},
                "TAGS": {"from": [1, 2], "to": [1, 2, 3]},
                "CUSTOM_FIELDS": {"from": {"po_number": {"value": ""}},
                                  "to": {"po_number": {"value": "PO-1"}}},
                "RETURN_DATE": {"from": "2026-06-10 09:00:00", "to": "0000-00-00 00:00:00"},
                "NOTES": {"from": None, "to": {"a": {"b": 1}}}},
}


def test_odd_values_read_as_words() -> None:
    words = seen(ODD)
    assert words["console"] == 'Job 7 "Gig" updated by HireHop: Venue, Internal, Tags and 3 more'
    assert words["telegram"] == (
        'Job 7 "Gig" updated by HireHop: Venue, Internal, Tags and 3 more\n\n'
        "Status: Unknown status (14)\n\n"
        "What changed\n• Venue: Barrowland → —\n• Internal: No → Yes\n• Tags: 1, 2 → 1, 2, 3\n"
        "• PO number: — → PO-1\n• Returns: Wed 10 Jun 2026, 09:00 → —\n• Notes: A: B: 1\n\n"
        "HireHop · Mon 05 Jan 2026, 09:30 GMT\nOpen job 7 in HireHop")


def test_unknown_status_reads_as_words_in_the_first_line() -> None:
    body = {"event": "job.status.updated", "job": 3, "user_name": "Sam",
            "changes": {"STATUS": {"from": 1.0, "to": "14"}}}
    assert seen(body)["slack"] == "Job 3: Provisional → Unknown status (14), by Sam"


# --- hostile text ------------------------------------------------------------------------


HOSTILE = ("*bold* _it_ ~s~ `code` <!channel> <@U1> <https://evil.example|click> "
           "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x07bell \u202eevil\u202c")


def test_hostile_text_is_inert_and_clean_everywhere() -> None:
    body = {"event": "contact.person.updated", "user_name": HOSTILE,
            "data": {"NAME": HOSTILE, "EMAIL": HOSTILE},
            "changes": {"NAME": {"from": HOSTILE, "to": HOSTILE + "!"}}}
    out = render(body)
    for text in every_string(out):
        assert not UNSAFE.search(text), repr(text)
    for text in every_string(out["slack"]):
        assert "<!channel>" not in text and "<@U1>" not in text and "<https://evil" not in text
    shown = "*bold* _it_ ~s~ `code` <!channel> <@U1> <https://evil.example|click> red bell evil"
    assert shown in out["console"]["text"]
    assert shown in telegram_visible(out["telegram"]["text"])
    assert shown in out["email"]["subject"]
    assert "∗bold∗ ＿it＿ ∼s∼ ˋcodeˋ &lt;!channel&gt;" in out["slack"]["text"]
    assert out["slack"]["blocks"][0]["text"]["text"].startswith(
        "Contact *bold* _it_ ~s~ `code` ‹!channel› ‹@U1›")


def test_an_invoice_sent_as_a_billing_row_with_lower_case_keys() -> None:
    # reference/hirehop.md §4.2: billing rows carry number, status, debit in lower case.
    body = {"event": "invoice.status.updated", "user_name": "Lisa Green", "job": 5,
            "data": {"kind": 1, "status": 3, "debit": "1008.00", "number": "OT-INV-1",
                     "client": "Northern Lights"},
            "changes": {"status": {"from": 2, "to": 3}}}
    words = seen(body)
    assert words["subject"] == (
        "Invoice OT-INV-1: Approved → Paid (by Lisa Green) · £1,008.00 · Northern Lights")
    assert "What changed\n• Status: Approved → Paid\n\n" in words["telegram"]

"""Templates turn events into plain-text messages: summaries, facts, changes, links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifybot.describing import describe
from notifybot.errors import ConfigError
from notifybot.events import Event, parse_event
from notifybot.formatting import format_email, format_slack, format_telegram
from notifybot.messages import ChangeRow, Fact
from notifybot.money import MoneyFormat
from notifybot.rendering import SHIPPED_TEMPLATES, Renderer, check_templates, field_label
from notifybot.statuses import StatusLabels

SAMPLES = Path("/work/shared/samples/hirehop")
LONDON = ZoneInfo("Europe/London")


def sample(name: str, **overrides: Any) -> Event:
    payload = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return parse_event({**payload, **overrides})


def renderer(labels: StatusLabels | None = None, timezone: ZoneInfo = LONDON,
             user_templates: Path | None = None) -> Renderer:
    return Renderer(labels=labels or StatusLabels(), timezone=timezone,
                    base_url="https://myhirehop.com/", user_templates=user_templates)


def facts(event: Event, r: Renderer | None = None) -> dict[str, str]:
    return {f.label: f.value for f in (r or renderer()).render(event).facts}


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("job.status.updated.constructed",
         'Job 15471 "Summer Tour 2026 ► Glasgow backline" (Northern Lights Touring Ltd): '
         "Provisional → Booked, by Sam Taylor"),
        ("invoice.status.updated.constructed",
         "Invoice OT-INV-12245: Draft → Approved (by Sam Taylor) · 1,008.00"),
        ("job.created.constructed",
         'New Job 15502 "Corporate AV – Café launch" (Bean & Leaf Cafés) as Enquiry, '
         "created by Priya Shah"),
        ("job.updated.constructed",
         'Job 15471 "Summer Tour 2026 ► Glasgow backline + PA" (Northern Lights Touring Ltd) '
         "updated by Sam Taylor: Job name, Ends"),
        ("invoice.status.updated",
         "Invoice (no number) updated by John Smith: Field name"),
    ],
)
def test_each_sample_renders_its_summary(name: str, summary: str) -> None:
    assert renderer().render(sample(name)).summary == summary


def test_job_status_sample_details() -> None:
    event = sample("job.status.updated.constructed")
    assert facts(event) == {
        "Client": "Alex Morgan",
        "Client ref": "PO-4471",
        "Venue": "Barrowland Ballroom",
        "Out": "Wed 10 Jun 2026, 09:00",
        "Starts": "Thu 11 Jun 2026, 09:00",
        "Ends": "Sun 14 Jun 2026, 22:00",
        "Returns": "Mon 15 Jun 2026, 10:00",
        "Manager": "Sam Taylor",
    }


def test_job_message_links_to_the_job() -> None:
    message = renderer().render(sample("job.status.updated.constructed"))
    assert message.link == "https://myhirehop.com/job.php?id=15471"
    assert message.link_label == "Open job 15471 in HireHop"


def test_job_status_change_row_uses_labels() -> None:
    message = renderer().render(sample("job.status.updated.constructed"))
    assert message.changes == (ChangeRow("Status", "Provisional", "Booked"),)


def test_job_updated_lists_what_changed_readably() -> None:
    message = renderer().render(sample("job.updated.constructed"))
    assert message.changes == (
        ChangeRow("Job name", "Summer Tour 2026 ► Glasgow backline",
                  "Summer Tour 2026 ► Glasgow backline + PA"),
        ChangeRow("Ends", "Sun 14 Jun 2026, 22:00", "Mon 15 Jun 2026, 22:00"),
    )


def test_empty_details_are_dropped() -> None:
    assert "Venue" not in facts(sample("job.created.constructed"))
    assert "Client ref" not in facts(sample("job.created.constructed"))


def test_money_is_never_shown_as_the_job_value() -> None:
    message = renderer().render(sample("job.status.updated.constructed"))
    assert not any("money" in f.label.lower() for f in message.facts)


def test_invoice_details_and_job_link() -> None:
    event = sample("invoice.status.updated.constructed")
    message = renderer().render(event)
    assert facts(event)["Net"] == "840.00"
    assert facts(event)["Job"] == "16757"
    assert message.link == "https://myhirehop.com/job.php?id=16757"


def test_event_without_job_has_no_link() -> None:
    message = renderer().render(sample("invoice.status.updated"))
    assert message.link is None and message.link_label == ""


def test_unknown_event_renders_generically_listing_what_changed() -> None:
    event = parse_event({
        "event": "contact.updated", "user_name": "Jo Reid", "time": "2026-05-13 08:41:02",
        "data": {"ID": "c77", "NAME": "Dana Lee"},
        "changes": {"EMAIL": {"from": "a@x", "to": "b@x"}, "PHONE_NUMBER": {"from": "1", "to": "2"}},
    })
    message = renderer().render(event)
    assert message.summary == "Contact Dana Lee updated by Jo Reid: Email, Phone number"
    assert message.changes == (ChangeRow("Email", "a@x", "b@x"), ChangeRow("Phone number", "1", "2"))
    assert facts(event) == {}, "the name is in the summary; the id is not shown"


def test_unknown_event_without_anything_still_renders() -> None:
    message = renderer().render(parse_event({}))
    assert message.summary == "HireHop event received by HireHop"
    assert message.changes == ()


def test_unknown_event_with_a_job_names_it() -> None:
    event = parse_event({"event": "job.deleted", "job": "15471", "user_email": "sam@x"})
    assert renderer().render(event).summary == "Job 15471 deleted by sam@x"


@pytest.mark.parametrize(
    ("name", "changes", "expected"),
    [
        ("job.status.updated", {"STATUS": {"from": "2", "to": "14"}},
         "Booked → Unknown status (14)"),
        ("job.status.updated", {"STATUS": {"from": 14.0, "to": 2}},
         "Unknown status (14) → Booked"),
        ("invoice.status.updated", {"STATUS": {"from": "2", "to": "1"}},
         "Approved → Unknown status (1)"),
        ("invoice.status.updated", {"STATUS": {"from": "3", "to": "5"}},
         "Paid → Unknown status (5)"),
    ],
)
def test_unknown_status_code_renders_as_status_n(name: str, changes: dict[str, Any],
                                                 expected: str) -> None:
    event = parse_event({"event": name, "job": 1, "user_name": "Sam", "data": {"NUMBER": "I-1"},
                         "changes": changes})
    assert expected in renderer().render(event).summary


def test_status_without_from_shows_only_the_new_status() -> None:
    event = sample("job.status.updated.constructed", changes={"STATUS": 5})
    assert renderer().render(event).summary.endswith(": Dispatched, by Sam Taylor")


def test_status_falls_back_to_data_status() -> None:
    event = sample("job.status.updated.constructed", changes={})
    assert renderer().render(event).summary.endswith(": Booked, by Sam Taylor")


def test_label_overrides_show_in_summary_and_changes() -> None:
    labels = StatusLabels.with_overrides(job={1: "Pencilled", 2: "Confirmed"},
                                         invoice={2: "Signed off"})
    r = renderer(labels)
    job = r.render(sample("job.status.updated.constructed"))
    invoice = r.render(sample("invoice.status.updated.constructed"))
    assert "Pencilled → Confirmed, by Sam Taylor" in job.summary
    assert job.changes == (ChangeRow("Status", "Pencilled", "Confirmed"),)
    assert "Draft → Signed off (by Sam Taylor)" in invoice.summary


@pytest.mark.parametrize(
    ("zone", "when"),
    [
        ("Europe/London", "Tue 12 May 2026, 14:04 BST"),
        ("UTC", "Tue 12 May 2026, 13:04 UTC"),
        ("America/New_York", "Tue 12 May 2026, 09:04 EDT"),
        ("Asia/Tokyo", "Tue 12 May 2026, 22:04 JST"),
    ],
)
def test_event_time_is_shown_in_the_configured_zone(zone: str, when: str) -> None:
    r = renderer(timezone=ZoneInfo(zone))
    assert r.render(sample("job.status.updated.constructed")).when == when


def test_local_job_dates_are_not_shifted_by_the_zone() -> None:
    r = renderer(timezone=ZoneInfo("Asia/Tokyo"))
    assert facts(sample("job.status.updated.constructed"), r)["Out"] == "Wed 10 Jun 2026, 09:00"


def test_winter_time_is_gmt() -> None:
    event = sample("job.status.updated.constructed", time="2026-01-12 13:04:17")
    assert renderer().render(event).when == "Mon 12 Jan 2026, 13:04 GMT"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("JOB_END", "Ends"), ("CLIENT_REF", "Client ref"), ("PHONE_NUMBER", "Phone number"),
     ("STATUS", "Status"), ("x", "X")],
)
def test_field_label(name: str, expected: str) -> None:
    assert field_label(name) == expected


# --- user templates ----------------------------------------------------------------------


def test_user_folder_overrides_one_template(tmp_path: Path) -> None:
    (tmp_path / "job.status.updated.j2").write_text(
        "{% block summary %}Job {{ job }} is now {{ status.after }}{% endblock %}\n"
        "{% block details %}Venue: {{ data.VENUE }}\n{% endblock %}\n", encoding="utf-8")
    r = renderer(user_templates=tmp_path)
    message = r.render(sample("job.status.updated.constructed"))
    assert message.summary == "Job 15471 is now Booked"
    assert message.facts == (Fact("Venue", "Barrowland Ballroom"),)
    assert r.render(sample("invoice.status.updated.constructed")).summary.startswith(
        "Invoice OT-INV-12245")


def test_user_template_can_extend_the_shipped_default(tmp_path: Path) -> None:
    (tmp_path / "job.created.j2").write_text(
        '{% extends "default.j2" %}\n'
        "{% block summary %}New job {{ job }} for {{ data.COMPANY }}{% endblock %}\n",
        encoding="utf-8")
    message = renderer(user_templates=tmp_path).render(sample("job.created.constructed"))
    assert message.summary == "New job 15502 for Bean & Leaf Cafés"
    assert {f.label for f in message.facts} >= {"Company", "Client", "Out", "Returns"}


def test_user_template_inherits_the_blocks_it_does_not_override(tmp_path: Path) -> None:
    (tmp_path / "job.created.j2").write_text(
        '{% extends "default.j2" %}\n{% block details %}Depot: {{ data.DEPOT }}\n{% endblock %}\n',
        encoding="utf-8")
    message = renderer(user_templates=tmp_path).render(sample("job.created.constructed"))
    assert message.summary == (
        'Job Corporate AV – Café launch (job 15502) created by Priya Shah')
    assert message.facts == (Fact("Depot", "2"),)

def test_blocks_read_what_the_template_sets_outside_them(tmp_path: Path) -> None:
    # A template of blocks alone renders them without running the whole template;
    # one that sets a name at its top level must still be run for its blocks to see it.
    (tmp_path / "job.created.j2").write_text(
        '{% set who = by or "someone" %}\n{% from "_job.j2" import job_title %}\n'
        "{% block summary %}{{ who }} made job {{ job }}{% endblock %}\n"
        "{% block details %}Made by: {{ who }}\n{% endblock %}\n", encoding="utf-8")
    (tmp_path / "job.updated.j2").write_text(
        "{# blocks alone #}\n{% block summary %}Job {{ job }} changed{% endblock %}\n\n"
        "{% block details %}Venue: {{ data.VENUE }}\n{% endblock %}\n", encoding="utf-8")
    r = renderer(user_templates=tmp_path)
    check_templates(r, [])
    made = r.render(sample("job.created.constructed"))
    assert made.summary == "Priya Shah made job 15502"
    assert made.facts == (Fact("Made by", "Priya Shah"),)
    changed = r.render(sample("job.updated.constructed"))
    assert changed.summary == "Job 15471 changed"
    assert changed.facts == (Fact("Venue", "Barrowland Ballroom"),)


def test_a_template_edited_after_the_check_renders_as_checked(tmp_path: Path) -> None:
    # What a template is made of is learnt when it is compiled, never read again
    # while rendering: an edit on disk waits for a reload, even a broken one.
    template = tmp_path / "_mine.j2"
    template.write_text('{% extends "default.j2" %}{% block summary %}Mine{% endblock %}',
                        encoding="utf-8")
    checked = renderer(user_templates=tmp_path)
    check_templates(checked, ["_mine"])
    expected = renderer(user_templates=tmp_path).render(sample("job.status.updated.constructed"),
                                                        "_mine")
    assert expected.summary == "Mine" and expected.facts  # default.j2's details
    for edit in ("{% block summary %}Edited{% endblock %}", "{% block summary %}{% if %}"):
        template.write_text(edit, encoding="utf-8")  # before the first message, even
        assert checked.render(sample("job.status.updated.constructed"), "_mine") == expected


def test_the_check_runs_blocks_no_message_shows(tmp_path: Path) -> None:
    (tmp_path / "job.updated.j2").write_text(
        "{% block summary %}S{% endblock %}\n"
        '{% block unused %}{% include "missing.j2" %}{% endblock %}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing\.j2"):
        check_templates(renderer(user_templates=tmp_path), [])


def test_subscription_template_is_used_by_name(tmp_path: Path) -> None:
    (tmp_path / "short.j2").write_text("{% block summary %}{{ event.name }}!{% endblock %}",
                                       encoding="utf-8")
    message = renderer(user_templates=tmp_path).render(sample("job.created.constructed"), "short")
    assert message.summary == "job.created!"


def test_missing_chosen_template_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not found") as caught:
        renderer().render(sample("job.created.constructed"), "nope")
    assert caught.value.where == "nope.j2"


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "job.created.j2").write_text(
        "{% block summary %}\nNew job {{ job }\n{% endblock %}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        renderer(user_templates=tmp_path).render(sample("job.created.constructed"))
    assert caught.value.where is not None and caught.value.where.endswith("job.created.j2")
    assert caught.value.key == "line 2"


@pytest.mark.parametrize("expression", ["data.STATUS // 0", "data.JOB_NAME - 1"])
def test_template_runtime_error_is_a_config_error(tmp_path: Path, expression: str) -> None:
    (tmp_path / "job.created.j2").write_text(
        f"{{% block summary %}}{{{{ {expression} }}}}{{% endblock %}}", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot render"):
        renderer(user_templates=tmp_path).render(sample("job.created.constructed"))


def test_sandbox_blocks_attribute_escape(tmp_path: Path) -> None:
    (tmp_path / "job.created.j2").write_text(
        "{% block summary %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}",
        encoding="utf-8")
    with pytest.raises(ConfigError):
        renderer(user_templates=tmp_path).render(sample("job.created.constructed"))


def test_empty_summary_falls_back_to_the_event_name(tmp_path: Path) -> None:
    (tmp_path / "job.created.j2").write_text("{% block summary %}{% endblock %}", encoding="utf-8")
    message = renderer(user_templates=tmp_path).render(sample("job.created.constructed"))
    assert message.summary == "HireHop event job.created"


# --- hostile payload text ----------------------------------------------------------------

HOSTILE = {
    "event": "job.updated",
    "job": 5,
    "user_name": "Eve\nApproved by: CEO",
    "data": {"JOB_NAME": "Gig\nClient: Fake Ltd", "CLIENT": "Real\r\nPaid: yes",
             "VENUE": "Hall\u2028Deposit: waived", "COMPANY": "Acme\n\nManager: Nobody"},
    "changes": {"VENUE": {"from": "Old", "to": "Hall\nApproved by: CEO"},
                "NOTES\nRefund: approved": {"from": "a", "to": "b"}},
}
FAKE_LABELS = {"Approved by", "Paid", "Deposit", "Manager", "Refund"}


def test_hostile_text_cannot_add_fake_facts() -> None:
    message = renderer().render(parse_event(HOSTILE))
    labels = {f.label for f in message.facts}
    assert not labels & FAKE_LABELS
    assert message.notes == ()
    assert "\n" not in message.summary
    assert next(f.value for f in message.facts if f.label == "Client") == "Real Paid: yes"


def test_hostile_text_cannot_add_lines_to_what_changed() -> None:
    message = renderer().render(parse_event(HOSTILE))
    for row in message.changes:
        for text in (row.field, row.before, row.after):
            assert "\n" not in text and "\r" not in text


@pytest.mark.parametrize("fmt", [format_telegram, format_email])
def test_hostile_text_cannot_start_a_fake_line_in_any_channel(fmt: Any) -> None:
    payload = fmt(renderer().render(parse_event(HOSTILE)))
    text = payload["text"]
    starts = {line.split(":", 1)[0].strip() for line in text.splitlines() if ":" in line}
    assert not starts & FAKE_LABELS


def test_hostile_text_stays_escaped_in_slack() -> None:
    event = parse_event({**HOSTILE, "data": {"JOB_NAME": "<!channel> & <@U1>"}})
    payload = format_slack(renderer().render(event))
    assert "<!channel>" not in json.dumps(payload)
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in payload["text"]


# --- check_templates ---------------------------------------------------------------------


def test_check_templates_counts_the_shipped_ones() -> None:
    assert check_templates(renderer(), []) == len(list(SHIPPED_TEMPLATES.glob("*.j2")))


def test_check_templates_confirms_chosen_templates(tmp_path: Path) -> None:
    (tmp_path / "short.j2").write_text("{% block summary %}x{% endblock %}", encoding="utf-8")
    r = renderer(user_templates=tmp_path)
    assert check_templates(r, ["short", "job.created"]) == len(
        list(SHIPPED_TEMPLATES.glob("*.j2"))) + 1


def test_check_templates_reports_a_missing_chosen_template() -> None:
    with pytest.raises(ConfigError, match="'invoice_paid' not found"):
        check_templates(renderer(), ["invoice_paid"])


def test_check_templates_reports_syntax_errors_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.j2").write_text("ok\n\n{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        check_templates(renderer(user_templates=tmp_path), [])
    assert caught.value.where is not None and caught.value.where.endswith("broken.j2")
    assert caught.value.key == "line 3"


# --- generic events, families, money, values ---------------------------------------------


@pytest.mark.parametrize(
    ("event", "template"),
    [("job.status.updated", "job.status.updated.j2"), ("job.deleted", "job.j2"),
     ("invoice.created", "invoice.j2"), ("invoice.status.updated", "invoice.status.updated.j2"),
     ("contact.person.updated", "contact.person.j2"), ("contact.company.x.y", "contact.company.j2"),
     ("payment.created", "payment.j2"), ("stock.item.updated", "default.j2"),
     ("unknown", "default.j2"), ("_job", "default.j2")],
)
def test_an_event_uses_its_own_then_its_familys_template(event: str, template: str) -> None:
    assert renderer().template_for(event) == template


@pytest.mark.parametrize(
    ("event", "entity", "action"),
    [("contact.person.updated", "Contact", "updated"), ("contact.company.created", "Company", "created"),
     ("payment.created", "Payment", "created"), ("stock.item.updated", "Stock item", "updated"),
     ("purchase_order.status.updated", "Purchase order", "updated"),
     ("job.archive", "Job", "archive event"), ("ping", "Ping", "received"),
     ("unknown", "HireHop event", "received")],
)
def test_entity_and_action_come_from_the_event_name(event: str, entity: str, action: str) -> None:
    assert describe(event) == (entity, action)


@pytest.mark.parametrize(
    ("data", "summary"),
    [({"ID": 5, "NAME": "Alex Morgan", "TITLE": "Mr"}, "Thing Alex Morgan updated by Jo"),
     ({"ID": 5, "FIRST_NAME": "Alex", "LAST_NAME": "Morgan"}, "Thing Alex Morgan updated by Jo"),
     ({"ID": 5, "TITLE": "Shure SM58"}, "Thing Shure SM58 updated by Jo"),
     ({"ID": 5, "COMPANY": "Acme"}, "Thing Acme updated by Jo"),
     ({"ID": 5, "NUMBER": "PO-7"}, "Thing PO-7 updated by Jo"),
     ({"ID": 5}, "Thing 5 updated by Jo"), ({}, "Thing updated by Jo")],
)
def test_a_generic_event_is_called_by_its_best_name(data: dict[str, Any], summary: str) -> None:
    event = parse_event({"event": "thing.updated", "user_name": "Jo", "data": data})
    assert renderer().render(event).summary == summary


@pytest.mark.parametrize(
    ("who", "by"),
    [({"user_name": "Sam", "user_email": "s@x"}, "Sam"), ({"user_email": "s@x"}, "s@x"),
     ({"user_name": "", "user_email": ""}, "HireHop"), ({"user_name": None}, "HireHop")],
)
def test_who_did_it(who: dict[str, Any], by: str) -> None:
    message = renderer().render(parse_event({"event": "thing.updated", **who}))
    assert message.summary.endswith(f"by {by}") and message.actor == by


def test_generic_facts_are_the_main_fields_in_words_capped() -> None:
    data = {"ID": 9, "NAME": "Dana", "CLIENT_ID": 4, "kind": 1, "CURRENCY": {"CODE": "EUR"},
            "EMAIL": "d@x", "ACTIVE": True, "TAGS": ["a", "b"], "ITEMS": [{"x": 1}],
            "ADDRESS": {"LINE1": "1 Road"}, "BLANK": "", "WHEN": "0000-00-00 00:00:00",
            "CUSTOM_FIELDS": {"vip": {"value": "yes"}}, "BALANCE": "-12.5",
            **{f"EXTRA_{i}": i for i in range(10)}}
    event = parse_event({"event": "thing.updated", "data": data,
                         "changes": {"EMAIL": {"from": "c@x", "to": "d@x"}}})
    assert renderer().render(event).facts == (
        Fact("Active", "Yes"), Fact("Tags", "a, b"), Fact("Vip", "yes"), Fact("Balance", "-€12.50"),
        Fact("Extra 0", "0"), Fact("Extra 1", "1"), Fact("Extra 2", "2"), Fact("Extra 3", "3"))


def test_money_in_changes_uses_the_configured_currency() -> None:
    r = Renderer(labels=StatusLabels(), timezone=LONDON, base_url="https://myhirehop.com",
                 money=MoneyFormat("GBP"))
    event = parse_event({"event": "job.updated", "job": 1,
                         "changes": {"MONEY": {"from": "11250.00", "to": 12500}}})
    assert r.render(event).changes == (ChangeRow("Money", "£11,250.00", "£12,500.00"),)


def test_a_status_change_comes_first_among_the_changes() -> None:
    event = parse_event({"event": "job.updated", "job": 1, "user_name": "Sam",
                         "changes": {"VENUE": {"from": "A", "to": "B"},
                                     "STATUS": {"from": 2, "to": 9}}})
    message = renderer().render(event)
    assert message.changes[0] == ChangeRow("Status", "Booked", "Cancelled")
    assert message.summary == "Job 1: Booked → Cancelled, by Sam (also Venue)"


def test_custom_field_changes_are_one_row_per_field() -> None:
    event = parse_event({"event": "job.updated", "job": 1, "changes": {"CUSTOM_FIELDS": {
        "from": {"po_number": {"value": ""}, "crew": {"value": "4"}},
        "to": '{"po_number": {"value": "PO-9"}, "crew": {"value": "4"}}'}}})
    assert renderer().render(event).changes == (ChangeRow("PO number", "—", "PO-9"),)


def test_unchanged_values_are_not_listed_as_changes() -> None:
    event = parse_event({"event": "job.updated", "job": 1,
                         "changes": {"QTY": {"from": "2", "to": 2.0}, "X": {"from": 1, "to": 2}}})
    assert renderer().render(event).changes == (ChangeRow("X", "1", "2"),)


def test_payload_cannot_forge_headline_marks() -> None:
    event = parse_event({"event": "thing.updated", "user_name": "\ue000key\ue001Paid\ue002",
                         "data": {"NAME": "\ue000name\ue001x"}})
    message = renderer().render(event)
    assert message.summary == "Thing namex updated by keyPaid"
    assert [p.role for p in message.headline] == ["", "name", ""]


def test_control_and_bidi_characters_never_reach_a_message() -> None:
    event = parse_event({"event": "job.updated", "job": 1, "user_name": "Eve\u202e\x1b[2J",
                         "data": {"JOB_NAME": "Gig\x07\x1b]0;x\x07", "CLIENT": "A\u2066B"},
                         "changes": {"VENUE\x00": {"from": "\x07A", "to": "B\x1b[31m"}}})
    message = renderer().render(event)
    assert message.summary == 'Job 1 "Gig" (AB) updated by Eve: Venue'
    assert message.actor == "Eve"
    assert message.changes == (ChangeRow("Venue", "A", "B"),)

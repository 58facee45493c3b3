"""Per-channel escaping and length limits: payload text never becomes markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from notifybot.formatting import (
    ELLIPSIS,
    EMAIL_SUBJECT_LIMIT,
    FORMATTERS,
    SLACK_FIELD_LIMIT,
    SLACK_FIELDS_MAX,
    SLACK_HEADER_LIMIT,
    SLACK_SECTION_LIMIT,
    SLACK_TEXT_LIMIT,
    TELEGRAM_LIMIT,
    format_console,
    format_email,
    format_slack,
    format_telegram,
    headline,
    mrkdwn_escape,
    one_line,
    slack_escape,
    slack_link,
    truncate,
)
from notifybot.messages import CHANGED, KEY, NAME, ChangeRow, Fact, Message, Part
from notifybot.safe_text import clean_text, escape_unsafe

HOSTILE = "Tom & <Jerry> <!channel> <@U123> <#C999|ops> <https://evil.example|click> it's \"x\""
LINK = "https://myhirehop.com/job.php?id=15471"


def hostile_message(text: str = HOSTILE) -> Message:
    return Message(
        summary=f"Job 15471 {text}",
        facts=(Fact("Client", text), Fact(text, "value")),
        notes=(text,),
        changes=(ChangeRow(text, text, text),),
        link=LINK,
        link_label=text,
    )


def long_message(n: int = 5000) -> Message:
    name = "Ä&<" * (n // 3)
    return Message(
        summary=f"Job 1 {name}: Provisional → Booked",
        facts=tuple(Fact(f"Field {i}", name) for i in range(15)),
        notes=(name,),
        changes=(ChangeRow("Job name", name, name),),
        link=LINK,
        link_label=f"Open job 1 {name}",
    )


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


class Visible(HTMLParser):
    """Telegram-style reading of HTML: visible text, and a check that tags nest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.stack: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html_text: str) -> tuple[str, set[str]]:
    parser = Visible()
    parser.feed(html_text)
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    return "".join(parser.text), parser.tags


def job_headline(name: str, company: str = "Acme", by: str = "Sam Taylor",
                 detail: str = "") -> Message:
    parts = (Part('Job 15471 "'), Part(name, NAME), Part('" ('), Part(company, NAME),
             Part("): "), Part("Provisional → Cancelled", KEY), Part(f", by {by}"))
    if detail:
        parts += (Part(" (also Qty)", CHANGED, " (also Qty 4 → 2)"),)
    return Message(summary="".join(p.text for p in parts), headline=parts)


# --- shared helpers ----------------------------------------------------------------------


def test_headline_that_fits_is_the_summary() -> None:
    message = job_headline("Glasgow backline")
    assert headline(message, 200) == message.summary == (
        'Job 15471 "Glasgow backline" (Acme): Provisional → Cancelled, by Sam Taylor')


def test_headline_shortens_the_name_at_a_word_boundary_not_the_status() -> None:
    message = job_headline("Summer Tour 2026 ► Glasgow backline and PA for three nights")
    assert headline(message, 100) == (
        'Job 15471 "Summer Tour 2026 ► Glasgow backline and…" (Acme): Provisional → Cancelled, '
        "by Sam Taylor")


def test_headline_shortens_the_longest_name_first() -> None:
    message = job_headline("Glasgow backline", company="Northern Lights Touring Limited of Scotland")
    assert headline(message, 90) == (
        'Job 15471 "Glasgow backline" (Northern Lights…): Provisional → Cancelled, '
        "by Sam Taylor")


def test_headline_cuts_the_end_at_a_word_but_never_the_status() -> None:
    message = job_headline("Gig", by="Sam Taylor of the very long department of lighting")
    text = headline(message, 70)
    assert text == 'Job 15471 "Gig" (Acme): Provisional → Cancelled, by Sam Taylor of…'
    assert len(text) <= 70


@pytest.mark.parametrize("limit", [45, 50, 60])
def test_headline_keeps_the_status_whatever_the_limit_allows(limit: int) -> None:
    message = job_headline("Summer Tour 2026 ► Glasgow backline", company="Northern Lights")
    text = headline(message, limit)
    assert len(text) <= limit
    assert "Provisional → Cancelled" in text


def test_headline_of_a_hand_built_message_is_cut_at_a_word() -> None:
    assert headline(Message(summary="Custom fields changed on the job"), 20) == "Custom fields…"


def test_detailed_headline_shows_the_values_of_a_few_changes() -> None:
    message = job_headline("Gig", detail="yes")
    assert headline(message, 200).endswith("by Sam Taylor (also Qty)")
    assert headline(message, 200, detailed=True).endswith("by Sam Taylor (also Qty 4 → 2)")


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abcdef", 10, "abcdef"), ("abcdef", 6, "abcdef"), ("abcdef", 5, "abcd…"),
     ("abcdef", 1, "…"), ("", 3, "")],
)
def test_truncate_cuts_with_a_visible_ellipsis(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


@pytest.mark.parametrize(
    "text", ["a\nb", "a\r\nb", "a\rb", "a\tb", "a\u2028b", "a\x0bb", "a\x0cb", "a\x85b", "  a   b  "])
def test_one_line_folds_every_line_break(text: str) -> None:
    assert one_line(text) == "a b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Tom & Jerry", "Tom &amp; Jerry"), ("<!channel>", "&lt;!channel&gt;"),
     ("it's \"quoted\"", "it's \"quoted\""), ("*bold* _it_", "*bold* _it_"), ("£ ►", "£ ►")],
)
def test_mrkdwn_escape_touches_only_amp_lt_gt(text: str, expected: str) -> None:
    assert mrkdwn_escape(text) == expected


def test_slack_link_escapes_the_label() -> None:
    assert slack_link(LINK, "Tom & <Jerry>") == f"<{LINK}|Tom &amp; &lt;Jerry&gt;>"


def test_slack_link_label_cannot_close_the_link_early() -> None:
    link = slack_link(LINK, "x> <!channel")
    assert link.count("<") == 1 and link.count(">") == 1


def test_slack_link_url_cannot_break_out() -> None:
    link = slack_link("https://x.example/?a=1|<!here>", "label")
    assert link == "<https://x.example/?a=1%7C%3C!here%3E|label>"


def test_every_channel_kind_has_a_formatter() -> None:
    assert set(FORMATTERS) == {"console", "slack", "telegram", "email"}


# --- Slack -------------------------------------------------------------------------------


def test_slack_text_is_the_escaped_summary() -> None:
    payload = format_slack(Message(summary="Job 1 \"Café & Bar\": Provisional → Booked, by Sam"))
    assert payload["text"] == "Job 1 \"Café & Bar\": Provisional → Booked, by Sam".replace(
        "&", "&amp;")


def test_slack_never_html_escapes_quotes() -> None:
    every = "".join(strings(format_slack(hostile_message())))
    assert "&#x27;" not in every and "&quot;" not in every and "&#39;" not in every
    assert "it's \"x\"" in every


@pytest.mark.parametrize("needle", ["<!channel>", "<!", "<@U123>", "<#C999", "<https://evil"])
def test_slack_payload_text_cannot_inject_mentions_or_links(needle: str) -> None:
    payload = format_slack(hostile_message())
    for text in strings(payload):
        assert needle not in text


def test_slack_payload_text_makes_no_markup_at_all() -> None:
    payload = format_slack(hostile_message())
    markup = [m for text in strings(payload) for m in re.findall(r"<[^>]*>", text)]
    assert markup == []


def test_slack_blocks_have_header_facts_changes_byline_and_button() -> None:
    message = Message(summary="Job 1: Provisional → Booked", facts=(Fact("Client", "Acme"),),
                      changes=(ChangeRow("Status", "Provisional", "Booked"),),
                      link=LINK, link_label="Open job 1 in HireHop", actor="Sam Taylor",
                      when="Tue 12 May 2026, 14:04 BST")
    blocks = format_slack(message)["blocks"]
    assert blocks == [
        {"type": "header", "text": {"type": "plain_text", "text": "Job 1: Provisional → Booked",
                                    "emoji": False}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Client*\nAcme", "verbatim": True}]},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": "*What changed*\n• *Status*: Provisional → Booked"}},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": "Sam Taylor · Tue 12 May 2026, 14:04 BST", "verbatim": True}]},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": "open_in_hirehop", "url": LINK,
            "text": {"type": "plain_text", "text": "Open job 1 in HireHop", "emoji": False}}]},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("*bold* _it_ ~s~ `code`", "∗bold∗ ＿it＿ ∼s∼ ˋcodeˋ"),
     ("po_number A*B x~y a`b", "po_number A*B x~y a`b"),  # inside a word Slack never styles
     ("*", "∗"), ("Tom & <Jerry>", "Tom &amp; &lt;Jerry&gt;"), ("_x", "＿x"), ("x_", "x＿")],
)
def test_slack_escape_defuses_markup_at_word_edges(text: str, expected: str) -> None:
    assert slack_escape(text) == expected


def test_slack_mrkdwn_text_cannot_style() -> None:
    hostile = "*bold* _it_ ~strike~ `code` ```block```"
    message = Message(summary=f"Job 1 {hostile}", facts=(Fact("Client", hostile),),
                      notes=(hostile,), changes=(ChangeRow("Venue", hostile, hostile),),
                      actor=hostile, when="Tue")
    payload = format_slack(message)
    mrkdwn = [payload["text"]] + [
        obj["text"] for block in payload["blocks"]
        for obj in [block.get("text", {}), *block.get("fields", []), *block.get("elements", [])]
        if obj.get("type") == "mrkdwn"]
    for text in mrkdwn:
        assert not re.search(r"(^|\W)[*_~`]\S", text.replace("*What changed*", "")
                             .replace("*Client*", "").replace("*Venue*", "")), text


def test_slack_header_is_plain_text_within_150_characters() -> None:
    header = format_slack(job_headline(("Summer Tour " * 30).strip()))["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= SLACK_HEADER_LIMIT
    assert header["text"]["text"].endswith("Tour…\" (Acme): Provisional → Cancelled, by Sam Taylor")


def test_slack_button_label_is_cut_to_75_characters() -> None:
    payload = format_slack(Message(summary="s", link=LINK, link_label="L" * 100))
    button = payload["blocks"][-1]["elements"][0]
    assert len(button["text"]["text"]) == 75 and button["url"] == LINK


def test_slack_has_no_button_for_an_over_long_url() -> None:
    payload = format_slack(Message(summary="s", link="https://x.example/" + "a" * 3000))
    assert [b["type"] for b in payload["blocks"]] == ["header"]


def test_slack_summary_is_one_line() -> None:
    payload = format_slack(Message(summary="Job 1\nClient: Fake"))
    assert "\n" not in payload["text"]
    assert "\n" not in payload["blocks"][0]["text"]["text"]


def test_slack_respects_text_and_block_limits_with_huge_names() -> None:
    payload = format_slack(long_message())
    assert len(payload["text"]) <= SLACK_TEXT_LIMIT
    assert payload["text"].endswith(ELLIPSIS)
    for block in payload["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= SLACK_SECTION_LIMIT
        for element in block.get("fields", []) + block.get("elements", []):
            assert len(element["text"]) <= SLACK_FIELD_LIMIT


def test_slack_field_value_full_of_ampersands_stays_within_the_field_limit() -> None:
    payload = format_slack(Message(summary="s", facts=(Fact("Notes", "&" * 5000),)))
    (field,) = payload["blocks"][1]["fields"]
    assert len(field["text"]) <= SLACK_FIELD_LIMIT
    assert field["text"].endswith(ELLIPSIS)


def test_slack_keeps_at_most_ten_fields() -> None:
    payload = format_slack(long_message())
    assert len(payload["blocks"][1]["fields"]) == SLACK_FIELDS_MAX


@pytest.mark.parametrize("count", [600, 601, 999, 1000])
def test_slack_truncation_never_splits_an_entity(count: int) -> None:
    payload = format_slack(Message(summary="&" * count, notes=("<" * count,)))
    for text in (payload["text"], payload["blocks"][1]["text"]["text"]):
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text[-12:]


# --- Telegram ----------------------------------------------------------------------------


def test_telegram_summary_bold_details_and_link() -> None:
    message = Message(summary="Job 1 <b>: Booked", facts=(Fact("Client", "Tom & Jerry"),),
                      changes=(ChangeRow("Status", "Provisional", "Booked"),),
                      link=LINK, link_label="Open job 1")
    payload = format_telegram(message)
    assert payload["parse_mode"] == "HTML"
    assert payload["text"] == (
        "<b>Job 1 &lt;b&gt;: Booked</b>\n\n<b>Client:</b> Tom &amp; Jerry\n\n"
        "<b>What changed</b>\n• <b>Status</b>: Provisional → Booked\n\n"
        f'<a href="{LINK}">Open job 1</a>')


def test_telegram_shows_who_and_when_in_italics() -> None:
    payload = format_telegram(Message(summary="Job 1: Booked", actor="Sam & Co", when="Tue",
                                      link=LINK, link_label="Open job 1"))
    assert payload["text"] == (
        f'<b>Job 1: Booked</b>\n\n<i>Sam &amp; Co · Tue</i>\n<a href="{LINK}">Open job 1</a>')


def test_telegram_escapes_every_payload_text() -> None:
    text, tags = visible(format_telegram(hostile_message())["text"])
    assert tags == {"b", "a"}
    assert HOSTILE in text


@pytest.mark.parametrize("size", [4000, 4096, 5000, 20000])
def test_telegram_visible_length_is_within_limit(size: int) -> None:
    text, tags = visible(format_telegram(long_message(size))["text"])
    assert len(text) <= TELEGRAM_LIMIT
    assert ELLIPSIS in text
    assert "b" in tags


def test_telegram_long_name_in_a_fact_is_cut_visibly() -> None:
    message = Message(summary="Job 1", facts=(Fact("Job name", "N" * 5000),), link=LINK,
                      link_label="Open job 1")
    text, _ = visible(format_telegram(message)["text"])
    assert TELEGRAM_LIMIT - 20 <= len(text) <= TELEGRAM_LIMIT
    assert f"N{ELLIPSIS}\n\nOpen job 1" in text


def test_telegram_short_message_is_not_cut() -> None:
    text, _ = visible(format_telegram(Message(summary="Job 1: Booked"))["text"])
    assert text == "Job 1: Booked"


def test_telegram_link_href_is_attribute_escaped() -> None:
    payload = format_telegram(Message(summary="s", link='https://x.example/?a=1&b="2"',
                                      link_label="go"))
    assert '<a href="https://x.example/?a=1&amp;b=&quot;2&quot;">go</a>' in payload["text"]


# --- email -------------------------------------------------------------------------------


def test_email_subject_is_one_line() -> None:
    payload = format_email(Message(summary="Job 1\r\nBcc: victim@example.com\nSubject: x"))
    assert "\n" not in payload["subject"] and "\r" not in payload["subject"]


def test_email_subject_is_at_most_200_characters() -> None:
    payload = format_email(long_message())
    assert len(payload["subject"]) <= EMAIL_SUBJECT_LIMIT
    assert payload["subject"].endswith(ELLIPSIS)


def test_email_html_part_is_escaped() -> None:
    payload = format_email(hostile_message("<script>alert(1)</script> & <b>x</b>"))
    assert "<script>" not in payload["html"]
    assert "&lt;script&gt;" in payload["html"]
    text, tags = visible(payload["html"])
    assert "<script>alert(1)</script> & <b>x</b>" in text
    assert "script" not in tags


def test_email_text_part_is_not_escaped() -> None:
    payload = format_email(hostile_message("Tom & <Jerry>"))
    assert "Tom & <Jerry>" in payload["text"]
    assert "&amp;" not in payload["text"] and "&lt;" not in payload["text"]


def test_email_html_shows_changes_as_a_table() -> None:
    message = Message(summary="s", changes=(ChangeRow("Status", "Draft", "Approved"),))
    html_part = format_email(message)["html"]
    assert "<th>Field</th><th>From</th><th>To</th>" in html_part
    assert "<tr><td>Status</td><td>Draft</td><td>Approved</td></tr>" in html_part


def test_email_text_lists_facts_changes_and_link() -> None:
    message = Message(summary="Job 1: Booked", facts=(Fact("Client", "Acme"),),
                      changes=(ChangeRow("Status", "Provisional", "Booked"),), link=LINK,
                      link_label="Open job 1")
    assert format_email(message)["text"] == (
        "Job 1: Booked\n\nClient: Acme\n\nWhat changed:\n  Status: Provisional → Booked\n\n"
        f"Open job 1: {LINK}\n")


# --- console -----------------------------------------------------------------------------


def test_console_prints_the_summary_on_one_line() -> None:
    assert format_console(Message(summary="Job 1\nClient: Fake")) == {"text": "Job 1 Client: Fake"}


def test_console_cuts_a_huge_summary() -> None:
    text = format_console(long_message())["text"]
    assert len(text) <= 1000 and text.endswith(ELLIPSIS)


# --- control and bidi characters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("\x1b[31mred\x1b[0m", "red"), ("a\x1b]0;title\x07b", "ab"), ("a\x1b]8;;http://x\x1b\\b", "ab"),
     ("bell\x07", "bell"), ("\u202eevil\u202c", "evil"), ("\u2066a\u2069", "a"), ("a\x9b2Jb", "ab"),
     ("nul\x00", "nul"), ("del\x7f", "del"), ("line\nbreak\ttab", "line\nbreak\ttab"),
     ("£ ► é 😀 Ж", "£ ► é 😀 Ж"), ("\ue000mark", "mark")],
)
def test_clean_text_removes_escapes_controls_and_bidi(text: str, expected: str) -> None:
    assert clean_text(text) == expected


@pytest.mark.parametrize("fmt", list(FORMATTERS.values()))
def test_no_formatter_lets_a_control_character_through(fmt: Any) -> None:
    bad = "\x1b[2J\u202e\x07\x9b"
    message = Message(summary=f"Job 1 {bad}", facts=(Fact(f"L{bad}", f"v{bad}"),), notes=(bad,),
                      changes=(ChangeRow(f"F{bad}", f"a{bad}", f"b{bad}"),), link=LINK,
                      link_label=f"Open{bad}", actor=f"Sam{bad}", when="Tue")
    for text in strings(fmt(message)):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)


def test_escape_unsafe_shows_what_was_sent() -> None:
    assert escape_unsafe("a\x1b[31m\u202eb\r\nc") == "a\\x1b[31m\\u202eb\\r\nc"
    assert escape_unsafe("a\x1b\u202e", as_json=True) == "a\\u001b\\u202e"
    assert escape_unsafe("plain £") == "plain £"


# --- long change lists -------------------------------------------------------------------


def many_changes(n: int) -> Message:
    rest = (ChangeRow(f"Field {i}", str(i), str(i + 1)) for i in range(n - 1))
    return Message(summary="Job 1: Booked → Cancelled",
                   changes=(ChangeRow("Status", "Booked", "Cancelled"), *rest))


def test_long_change_lists_end_with_how_many_more_in_every_channel() -> None:
    message = many_changes(40)
    slack = format_slack(message)["blocks"][1]["text"]["text"]
    assert slack.startswith("*What changed*\n• *Status*: Booked → Cancelled\n• *Field 0*: 0 → 1")
    assert slack.endswith("• *Field 8*: 8 → 9\n…and 30 more")
    telegram, _ = visible(format_telegram(message)["text"])
    assert telegram.endswith("• Field 8: 8 → 9\n…and 30 more")
    email = format_email(message)
    assert email["text"].endswith("  Field 23: 23 → 24\n  …and 15 more\n")
    assert "<p>…and 15 more</p>" in email["html"]


def test_a_short_change_list_has_no_more_line() -> None:
    telegram, _ = visible(format_telegram(many_changes(3))["text"])
    assert telegram.endswith("• Field 1: 1 → 2") and "more" not in telegram

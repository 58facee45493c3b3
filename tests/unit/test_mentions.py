"""Mentions: who a subscription names for an event, and how each channel kind names them."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from notifybot.config import Person
from notifybot.events import parse_event
from notifybot.formatting import FORMATTERS, SLACK_TEXT_LIMIT, TELEGRAM_LIMIT
from notifybot.mentions import Mention, add_mentions, describe_mentions, mentions_for, name_key
from notifybot.messages import Fact, Message
from notifybot.pipeline import plan, renderer_for
from notifybot.testing import FakeSender
from notifybot.visible_html import visible_length

from .test_config import HEAD, load_text

SAM = Person("sam", ("Sam Taylor",), slack="U0123ABCD", telegram="sam_t", email="sam@example.com")
JO = Person("jo", ("Jo Reid", "Joanna Reid"), slack="U0456EFGH")
PEOPLE = {"sam": SAM, "jo": JO}
HOSTILE = "<!channel> & <@U999> @everyone"


def job_event(**data: Any) -> Any:
    return parse_event({"event": "job.updated", "job": 15471, "data": data})


MESSAGE = Message(summary="Job 15471 \"Tour\": Provisional → Booked", facts=(Fact("Client", "A"),),
                  link="https://myhirehop.com/job.php?id=15471", link_label="Job 15471")


def test_manager_is_matched_to_a_person_by_name_whatever_the_case_and_spacing() -> None:
    event = job_event(MANAGER="  sam   TAYLOR ", MANAGER2="Jo Reid")
    assert mentions_for(event, ["manager"], PEOPLE) == (
        Mention("Sam Taylor", SAM), Mention("Jo Reid", JO))


def test_a_manager_with_no_people_entry_is_named_in_plain_text() -> None:
    event = job_event(MANAGER="Alex Morgan", MANAGER2="")
    assert mentions_for(event, ["manager"], PEOPLE) == (Mention("Alex Morgan"),)


def test_people_keys_and_managers_are_mentioned_once_each_in_order() -> None:
    event = job_event(MANAGER="Sam Taylor", MANAGER2="sam taylor")
    assert mentions_for(event, ["jo", "manager", "sam"], PEOPLE) == (
        Mention("Jo Reid", JO), Mention("Sam Taylor", SAM))


def test_no_manager_fields_mean_no_manager_mention() -> None:
    event = parse_event({"event": "invoice.status.updated", "data": {"MANAGER": 7}})
    assert mentions_for(event, ["manager"], PEOPLE) == ()
    assert name_key(" A\tB  c ") == "a b c"


def test_slack_gets_user_ids_in_a_context_block_and_in_the_fallback_text() -> None:
    payload = FORMATTERS["slack"](MESSAGE)
    out = add_mentions("slack", payload, [Mention("Sam Taylor", SAM), Mention("Alex <b> & Co")])
    assert out["blocks"][:-1] == payload["blocks"]
    assert out["blocks"][-1] == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "cc <@U0123ABCD>, Alex &lt;b&gt; &amp; Co"}]}
    assert out["text"].endswith("\ncc <@U0123ABCD>, Alex &lt;b&gt; &amp; Co")
    assert out["text"].startswith(payload["text"])
    assert "cc" not in payload["text"]  # the formatter's payload is left as it was


def test_payload_text_never_becomes_a_mention() -> None:
    """Only configured ids become ``<@…>``: a hostile manager name stays escaped text."""
    event = job_event(MANAGER=HOSTILE)
    mentions = mentions_for(event, ["manager"], PEOPLE)
    slack = add_mentions("slack", FORMATTERS["slack"](MESSAGE), mentions)
    context = slack["blocks"][-1]["elements"][0]["text"]
    assert "<!channel>" not in context and "<@U999>" not in context
    assert context == "cc &lt;!channel&gt; &amp; &lt;@U999&gt; @everyone"
    telegram = add_mentions("telegram", FORMATTERS["telegram"](MESSAGE), mentions)
    assert telegram["text"].endswith("cc &lt;!channel&gt; &amp; &lt;@U999&gt; @everyone")


def test_telegram_gets_usernames_and_plain_names() -> None:
    payload = FORMATTERS["telegram"](MESSAGE)
    out = add_mentions("telegram", payload, [Mention("Sam Taylor", SAM), Mention("Jo Reid", JO)])
    assert out["text"] == payload["text"] + "\n\ncc @sam_t, Jo Reid"
    assert out["parse_mode"] == "HTML"


def test_a_full_telegram_message_is_cut_to_make_room_and_stays_valid_html() -> None:
    long = Message(summary="S", notes=("x & y " * 1200,), link="https://e.example/?a=1&b=2",
                   link_label="the job")
    payload = FORMATTERS["telegram"](long)
    assert visible_length(payload["text"]) == TELEGRAM_LIMIT
    out = add_mentions("telegram", payload, [Mention("Sam Taylor", SAM)])
    assert visible_length(out["text"]) == TELEGRAM_LIMIT
    assert out["text"].endswith("…\n\ncc @sam_t")
    strict = _Strict()
    strict.feed(out["text"])
    strict.close()


def test_a_full_slack_text_is_cut_to_make_room() -> None:
    payload = FORMATTERS["slack"](Message(summary="&" * 999))
    payload["text"] = "&amp;" * 600  # as long as the formatter ever makes it
    out = add_mentions("slack", payload, [Mention("Sam Taylor", SAM)])
    assert len(out["text"]) <= SLACK_TEXT_LIMIT
    assert out["text"].endswith("&amp;…\ncc <@U0123ABCD>")


def test_email_adds_people_to_cc_and_names_everyone_in_both_parts() -> None:
    payload = FORMATTERS["email"](MESSAGE)
    out = add_mentions("email", payload, [Mention("Sam Taylor", SAM), Mention("Jo Reid", JO),
                                          Mention("A <b>")])
    assert out["cc"] == ["sam@example.com"]  # Jo has no address; a plain name has none
    assert out["subject"] == payload["subject"]
    assert out["text"].endswith("\n\ncc Sam Taylor, Jo Reid, A <b>\n")
    assert out["html"].endswith("<p>cc Sam Taylor, Jo Reid, A &lt;b&gt;</p></body></html>")


def test_email_without_addresses_has_no_cc() -> None:
    out = add_mentions("email", FORMATTERS["email"](MESSAGE), [Mention("Jo Reid", JO)])
    assert "cc" not in out


def test_console_names_them_on_the_same_line() -> None:
    out = add_mentions("console", FORMATTERS["console"](MESSAGE), [Mention("Sam Taylor", SAM)])
    assert out["text"] == 'Job 15471 "Tour": Provisional → Booked (cc Sam Taylor)'


@pytest.mark.parametrize("kind", sorted(FORMATTERS))
def test_no_mentions_change_nothing(kind: str) -> None:
    payload = FORMATTERS[kind](MESSAGE)
    assert add_mentions(kind, payload, []) == payload
    assert len(payload.get("text", "")) <= max(SLACK_TEXT_LIMIT, TELEGRAM_LIMIT)


class _Strict(HTMLParser):
    """Fails on a tag closed that was not open, or left open at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag

    def close(self) -> None:
        super().close()
        assert not self.stack


def test_preview_says_who_is_mentioned_and_how() -> None:
    mentions = mentions_for(job_event(MANAGER="Sam Taylor", MANAGER2="Alex Morgan"),
                            ["manager"], PEOPLE)
    assert describe_mentions(["manager"], mentions) == [
        "mentions Sam Taylor ([people.sam]), Alex Morgan (no [people] entry: named in plain text)"]
    assert describe_mentions(["manager"], []) == [
        "mentions nobody: manager named no one for this event"]
    assert describe_mentions([], []) == []


def test_planned_payloads_carry_the_subscriptions_mentions(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + '''
[people.sam]
names = ["Sam Taylor"]
slack = "U0123ABCD"
telegram = "sam_t"

[channels.ops]
type = "slack"
token = "xoxb-1"
channel = "#ops"
  [[channels.ops.subscriptions]]
  events = ["job.*"]
  mention = ["manager"]

[channels.quiet]
type = "telegram"
token = "1:x"
chat_id = "42"
  [[channels.quiet.subscriptions]]
  events = ["job.*"]
''')
    senders = {"ops": FakeSender("ops", kind="slack"), "quiet": FakeSender("quiet", kind="telegram")}
    event = job_event(MANAGER="Sam Taylor", JOB_NAME="Tour")
    planned = {d.channel: d for d in plan(event, config.index.match(event), renderer_for(config),
                                          senders, config.channels, config.people)}  # type: ignore[arg-type]
    assert planned["ops"].payload["text"].endswith("\ncc <@U0123ABCD>")
    assert "cc" not in planned["quiet"].payload["text"]  # no mention = [...]: nobody named


def test_control_characters_in_a_managers_name_are_dropped() -> None:
    event = job_event(MANAGER="Alex\x1b[31m Morgan\u202e\nX", MANAGER2="\x1b\x07")
    assert mentions_for(event, ["manager"], PEOPLE) == (Mention("Alex[31m Morgan X"),)

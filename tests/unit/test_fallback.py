"""The fallback hop's words: which channel could not take a message and why, on top of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifybot.cli import main
from notifybot.config import ChannelConfig
from notifybot.fallback import (
    describe,
    destination_label,
    failure_notice,
    waiting_notice,
    with_notice,
)
from notifybot.formatting import EMAIL_SUBJECT_LIMIT, FORMATTERS, SLACK_TEXT_LIMIT, TELEGRAM_LIMIT
from notifybot.messages import Fact, Message
from notifybot.visible_html import visible_length

from .test_config import ENV, HEAD, load_text, write
from .test_conversation_config import MAIL, SLACK


def channel(name: str, kind: str, **options: Any) -> ChannelConfig:
    return ChannelConfig(name, kind, {"type": kind, **options}, ())


OPS = channel("ops", "slack", channel="#ops", token="xoxb-secret")
MESSAGE = Message(summary="Job 15471: Provisional → Booked", facts=(Fact("Client", "A & B"),),
                  link="https://myhirehop.com/job.php?id=15471", link_label="Job 15471")


@pytest.mark.parametrize(("chan", "label"), [
    (OPS, "Slack #ops"),
    (channel("ops", "slack", channel="C0123ABCD"), "Slack C0123ABCD (channel ops)"),
    (channel("warehouse", "telegram", chat_id=-1001234), "Telegram chat -1001234 (channel warehouse)"),
    (channel("oncall", "email", to=["oncall@example.com"]), "email to oncall@example.com"),
    (channel("boss", "email", to="a@example.com"), "email to a@example.com (channel boss)"),
    (channel("all", "email", to=["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"]),
     "email to a@x.org, b@x.org, c@x.org and 2 more (channel all)"),
    (channel("log", "console"), "console log"),
])
def test_a_channel_is_named_as_people_know_it(chan: ChannelConfig, label: str) -> None:
    assert destination_label(chan) == label


def test_the_failure_notice_names_kind_destination_and_reason() -> None:
    assert failure_notice(OPS, "invalid_auth") == "could not reach Slack #ops: invalid_auth"
    assert failure_notice(OPS, "") == "could not reach Slack #ops: unknown error"
    assert "secret" not in failure_notice(OPS, "invalid_auth")


def test_the_waiting_notice_says_how_long_and_that_it_is_still_retried() -> None:
    assert waiting_notice(OPS, 15 * 60 + 20, "connection refused") == (
        "this message has been waiting 15 minutes for Slack #ops and is still being retried "
        "(last error: connection refused)")
    assert waiting_notice(OPS, 61, None) == (
        "this message has been waiting 1 minute for Slack #ops and is still being retried")
    assert "waiting 30 seconds" in waiting_notice(OPS, 30, None)


def test_email_gets_the_notice_in_subject_and_both_parts() -> None:
    payload = FORMATTERS["email"](MESSAGE)
    out = with_notice("email", payload, "could not reach Slack #ops: <invalid_auth>")
    assert out["subject"] == ("could not reach Slack #ops: <invalid_auth> — "
                              "Job 15471: Provisional → Booked")
    assert out["text"] == "could not reach Slack #ops: <invalid_auth>\n\n" + payload["text"]
    assert out["html"].startswith(
        "<html><body><p><strong>could not reach Slack #ops: &lt;invalid_auth&gt;</strong></p>")
    assert out["html"].endswith(payload["html"].removeprefix("<html><body>"))


def test_a_long_email_subject_is_cut() -> None:
    out = with_notice("email", FORMATTERS["email"](MESSAGE), "n" * 300)
    assert len(out["subject"]) == EMAIL_SUBJECT_LIMIT and out["subject"].endswith("…")


def test_slack_gets_the_notice_as_the_first_block_and_in_the_text_escaped() -> None:
    payload = FORMATTERS["slack"](MESSAGE)
    out = with_notice("slack", payload, "could not reach Telegram chat 1: <!channel> & co")
    assert out["blocks"][0] == {"type": "section", "text": {
        "type": "mrkdwn", "text": "*could not reach Telegram chat 1: &lt;!channel&gt; &amp; co*"}}
    assert out["blocks"][1:] == payload["blocks"]
    assert out["text"] == ("could not reach Telegram chat 1: &lt;!channel&gt; &amp; co\n"
                           + payload["text"])
    long = with_notice("slack", {"text": "a" * SLACK_TEXT_LIMIT, "blocks": []}, "n")
    assert len(long["text"]) == SLACK_TEXT_LIMIT


def test_telegram_gets_the_notice_in_italics_and_stays_within_its_limit() -> None:
    payload = FORMATTERS["telegram"](MESSAGE)
    out = with_notice("telegram", payload, "could not reach Slack #ops: <x> & y")
    assert out["text"] == ("<i>could not reach Slack #ops: &lt;x&gt; &amp; y</i>\n\n"
                           + payload["text"])
    full = FORMATTERS["telegram"](Message(summary="s", notes=("z" * 5000,)))
    assert visible_length(with_notice("telegram", full, "notice")["text"]) == TELEGRAM_LIMIT


def test_console_prefixes_its_one_line() -> None:
    out = with_notice("console", FORMATTERS["console"](MESSAGE), "could not reach\nSlack #ops: x")
    assert out == {"text": "could not reach Slack #ops: x — Job 15471: Provisional → Booked"}


def test_preview_describes_both_hops(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + MAIL + SLACK + 'fallback = "oncall"\nescalate_after = "15m"\n')
    assert describe(config, "ops") == [
        'if it dies: sent to oncall (email to oncall@example.com) too, headed '
        '"could not reach Slack C1 (channel ops): REASON"',
        'if still unsent after 15m: sent to oncall (email to oncall@example.com) once, headed '
        '"this message has been waiting 15 minutes for Slack C1 (channel ops) and is still '
        'being retried"']
    assert describe(config, "oncall") == []


def test_the_preview_command_shows_mentions_and_hops(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, HEAD + MAIL + SLACK + '''fallback = "oncall"
escalate_after = "15m"
  [[channels.ops.subscriptions]]
  events = ["job.*"]
  mention = ["manager", "jo"]

[people.sam]
names = ["Sam Taylor"]
slack = "U0123ABCD"
[people.jo]
names = ["Jo Reid"]
''')
    event = tmp_path / "event.json"
    event.write_text('{"event": "job.updated", "job": 7, "data": {"MANAGER": "sam taylor"}}')
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["preview", str(event), "-c", str(config)])
    out = capsys.readouterr().out
    assert exited.value.code == 0, out
    assert '"text": "cc <@U0123ABCD>, Jo Reid"' in out
    assert "mentions Sam Taylor ([people.sam]), Jo Reid ([people.jo])" in out
    assert ('if it dies: sent to oncall (email to oncall@example.com) too, headed '
            '"could not reach Slack C1 (channel ops): REASON"') in out
    assert "if still unsent after 15m: sent to oncall" in out

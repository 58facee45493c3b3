"""From a plain :class:`Message` to what each channel kind sends, escaped and within its limits.

Escaping is done here and only here, per kind, so that payload text can never
inject markup or mentions:

* Slack mrkdwn escapes ``& < >`` and nothing else (``html.escape`` would show ``&#x27;``);
* Telegram HTML escapes with ``html.escape``;
* email has a plain text part (unescaped) and an HTML part (escaped); the subject
  is one line of at most 200 characters;
* the console prints the summary on one line.

Text that is too long is cut with a visible ``…``; formatting never fails.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .messages import ChangeRow, Fact, Message

ELLIPSIS = "…"
SLACK_SECTION_LIMIT = 3000
SLACK_FIELD_LIMIT = 2000
SLACK_FIELDS_MAX = 10
SLACK_TEXT_LIMIT = 3000
TELEGRAM_LIMIT = 4096
EMAIL_SUBJECT_LIMIT = 200
SUMMARY_LIMIT = 1000

Payload = dict[str, Any]


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, the last one ``…`` when something was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def one_line(text: str) -> str:
    """Newlines and other line breaks folded to single spaces."""
    return " ".join(text.split())


def mrkdwn_escape(text: str) -> str:
    """Slack's escaping: only ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, label: str) -> str:
    """``<url|label>`` with the label escaped and ``|``, ``<``, ``>`` percent-encoded in the URL."""
    safe_url = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe_url}|{mrkdwn_escape(label)}>"


def change_text(change: ChangeRow) -> str:
    if change.before:
        return f"{change.field}: {change.before} → {change.after}"
    return f"{change.field}: {change.after}"


def format_console(message: Message) -> Payload:
    return {"text": truncate(one_line(message.summary), SUMMARY_LIMIT)}


def format_slack(message: Message) -> Payload:
    """Block Kit: the summary as a section, facts as fields, changes, the link as context."""
    summary = truncate(one_line(message.summary), SUMMARY_LIMIT)
    blocks: list[dict[str, Any]] = [_slack_section(f"*{mrkdwn_escape(summary)}*")]
    if message.facts:
        fields = [_slack_field(fact) for fact in message.facts[:SLACK_FIELDS_MAX]]
        blocks.append({"type": "section", "fields": fields})
    lines = [mrkdwn_escape(note) for note in message.notes]
    lines += [f"• {mrkdwn_escape(change_text(c))}" for c in message.changes]
    if lines:
        blocks.append(_slack_section("\n".join(lines)))
    if message.link:
        link = slack_link(message.link, truncate(one_line(message.link_label or message.link), 200))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return {"text": cut_escaped(mrkdwn_escape(summary), SLACK_TEXT_LIMIT), "blocks": blocks}


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn",
                                        "text": cut_escaped(text, SLACK_SECTION_LIMIT)}}


def _slack_field(fact: Fact) -> dict[str, Any]:
    label = cut_escaped(mrkdwn_escape(one_line(fact.label)), 100)
    value = cut_escaped(mrkdwn_escape(fact.value), SLACK_FIELD_LIMIT - len(label) - 3)
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def cut_escaped(text: str, limit: int) -> str:
    """Cut already-escaped text to ``limit`` characters without splitting an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def format_telegram(message: Message) -> Payload:
    """HTML: the summary in bold, details below, then a link; ≤ 4096 visible characters."""
    budget = _Budget(TELEGRAM_LIMIT)
    parts = [budget.take(one_line(message.summary), lambda s: f"<b>{html.escape(s)}</b>")]
    details = [f"{fact.label}: {fact.value}" for fact in message.facts] + list(message.notes)
    details += [change_text(change) for change in message.changes]
    if details:
        parts.append(budget.take("\n", lambda s: s))
    for line in details:
        parts.append(budget.take("\n" + line, html.escape))
    if message.link:
        label = message.link_label or message.link
        url = html.escape(message.link, quote=True)
        parts.append(budget.take("\n\n", lambda s: s))
        parts.append(budget.take(label, lambda s: f'<a href="{url}">{html.escape(s)}</a>'))
    return {"text": "".join(parts), "parse_mode": "HTML"}


class _Budget:
    """Counts visible characters (what Telegram counts after parsing) and cuts at the limit."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, text: str, render: Callable[[str], str]) -> str:
        if self.left <= 0 or not text:
            return ""
        if len(text) > self.left:
            text = truncate(text, self.left)
        self.left -= len(text)
        return render(text)


def format_email(message: Message) -> Payload:
    """A one-line subject, a plain text part, and an HTML part with the changes as a table."""
    subject = truncate(one_line(message.summary), EMAIL_SUBJECT_LIMIT)
    return {"subject": subject, "text": _email_text(message), "html": _email_html(message)}


def _email_text(message: Message) -> str:
    lines = [message.summary, ""]
    lines += [f"{fact.label}: {fact.value}" for fact in message.facts]
    lines += list(message.notes)
    if message.changes:
        lines += ["", "What changed:"] + [f"  {change_text(c)}" for c in message.changes]
    if message.link:
        lines += ["", f"{message.link_label or 'Link'}: {message.link}"]
    return "\n".join(lines).rstrip() + "\n"


def _email_html(message: Message) -> str:
    e = html.escape
    out = [f"<p><strong>{e(message.summary)}</strong></p>"]
    if message.facts:
        rows = "".join(f"<tr><th align='left'>{e(f.label)}</th><td>{e(f.value)}</td></tr>"
                       for f in message.facts)
        out.append(f"<table>{rows}</table>")
    out += [f"<p>{e(note)}</p>" for note in message.notes]
    if message.changes:
        rows = "".join(
            f"<tr><td>{e(c.field)}</td><td>{e(c.before)}</td><td>{e(c.after)}</td></tr>"
            for c in message.changes
        )
        out.append(
            "<table border='1' cellpadding='4' cellspacing='0'>"
            f"<tr><th>Field</th><th>From</th><th>To</th></tr>{rows}</table>"
        )
    if message.link:
        out.append(f"<p><a href=\"{e(message.link)}\">{e(message.link_label or message.link)}</a></p>")
    return "<html><body>" + "".join(out) + "</body></html>"


FORMATTERS: dict[str, Callable[[Message], Payload]] = {
    "console": format_console,
    "slack": format_slack,
    "telegram": format_telegram,
    "email": format_email,
}

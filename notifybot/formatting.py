"""From a plain :class:`Message` to what each channel kind sends, escaped and within its limits.

Escaping is done here and only here, per kind, so that payload text can never
inject markup, mentions or links:

* Slack: the summary is a ``header`` block (``plain_text``); every other text is
  ``mrkdwn`` with ``verbatim`` set (no automatic links), escaped with ``& < >``
  (``html.escape`` would show ``&#x27;``), and the markup characters ``* _ ~ ```
  at a word edge are replaced by look-alikes, so payload text cannot style;
* Telegram HTML escapes with ``html.escape``;
* email has a plain text part (unescaped) and an HTML part (escaped); the subject
  is one line of at most 200 characters;
* the console prints the summary on one line, with the values of a few changes.

Every text is first cleaned of control and bidi characters. Text that is too
long is shortened with a visible ``…``: a summary loses words of a name before
anything else and never its status; a list of changes ends with "…and N more".
Formatting never fails.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .messages import KEY, NAME, ChangeRow, Fact, Message, Part
from .safe_text import clean_text

ELLIPSIS = "…"
SLACK_SECTION_LIMIT = 3000
SLACK_FIELD_LIMIT = 2000
SLACK_FIELDS_MAX = 10
SLACK_TEXT_LIMIT = 3000
SLACK_HEADER_LIMIT = 150
SLACK_BUTTON_LIMIT = 75
SLACK_URL_LIMIT = 3000
TELEGRAM_LIMIT = 4096
EMAIL_SUBJECT_LIMIT = 200
SUMMARY_LIMIT = 1000
CHANGES_SHOWN = 10  # changes listed in a chat message before "…and N more"
EMAIL_CHANGES_SHOWN = 25
CHAT_VALUE_LIMIT = 200  # characters of one value in a chat message
_MIN_NAME = 12  # a shortened name keeps at least this many characters, if it can

Payload = dict[str, Any]

_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})
_SLACK_LOOKALIKES = {"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"}
_SLACK_MARKUP = re.compile("[*_~`]")


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, the last one ``…`` when something was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def cut_words(text: str, limit: int, keep: int = 0) -> str:
    """At most ``limit`` characters, cut at a word boundary (not before ``keep``) with ``…``."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= max(keep, (limit - 1) // 2):
        cut = cut[:space]
    elif 0 < keep < limit:  # no word boundary after what must stay: cut right after it
        cut = cut[:keep]
    return cut.rstrip(" ,;:·(–-") + ELLIPSIS


def one_line(text: str) -> str:
    """Newlines and other line breaks folded to single spaces."""
    return " ".join(text.split())


def fold(text: str) -> str:
    """Like :func:`one_line`, but an edge space stays (one), so that parts can be joined."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


def headline(message: Message, limit: int, *, detailed: bool = False) -> str:
    """The summary in at most ``limit`` characters, on one line.

    Names are shortened first (at a word boundary), then the end is cut at a word
    boundary, never before the end of a key part (the status move). ``detailed``
    uses the changes' values where the message has them (``Qty 4 → 2``).
    """
    parts = [Part(fold(clean_text(p.detail if detailed and p.detail else p.text)), p.role)
             for p in message.parts]
    texts = _spaced(parts)
    if sum(map(len, texts)) <= limit:
        return "".join(texts)
    names = [i for i, p in enumerate(parts) if p.role == NAME]
    keys = [i for i, p in enumerate(parts) if p.role == KEY]
    for floor in (_MIN_NAME, 1):
        _shrink(texts, names, limit, floor=floor)
        # What follows the last key part (who did it...) may lose words before a
        # name is shortened to nothing; the key part itself is never cut.
        keep = sum(map(len, texts[: keys[-1] + 1])) if keys else 0
        if keep < limit:
            return cut_words("".join(texts), limit, keep=keep)
    return cut_words("".join(texts), limit)


def _shrink(texts: list[str], names: list[int], limit: int, *, floor: int) -> None:
    """Shorten the name parts, longest first, to no less than ``floor`` characters."""
    for i in sorted(names, key=lambda i: -len(texts[i])):
        excess = sum(map(len, texts)) - limit
        if excess <= 0:
            return
        core = texts[i].strip()
        target = max(floor, len(core) - excess)
        if target < len(core):
            texts[i] = texts[i].replace(core, cut_words(core, target), 1)


def _spaced(parts: Sequence[Part]) -> list[str]:
    texts = [p.text for p in parts]
    if texts:
        texts[0], texts[-1] = texts[0].lstrip(), texts[-1].rstrip()
    return texts


def mrkdwn_escape(text: str) -> str:
    """Slack's escaping: only ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_escape(text: str) -> str:
    """Payload text made inert in Slack mrkdwn: ``& < >`` escaped, markup characters defused.

    Slack has no escape for ``* _ ~ ```; it styles only where such a character is
    at a word edge, so those (and only those) become look-alikes (``∗ ＿ ∼ ˋ``):
    ``*bold*`` cannot bold, while ``po_number`` and ``A*B`` stay as they are.
    """
    if _SLACK_MARKUP.search(text) is None:  # the usual case: nothing to defuse
        return mrkdwn_escape(text)
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch in _SLACK_LOOKALIKES:
            before = chars[i - 1] if i > 0 else " "
            after = chars[i + 1] if i + 1 < len(chars) else " "
            if not (before.isalnum() and after.isalnum()):
                chars[i] = _SLACK_LOOKALIKES[ch]
    return mrkdwn_escape("".join(chars))


def slack_link(url: str, label: str) -> str:
    """``<url|label>`` with the label escaped and ``|``, ``<``, ``>`` percent-encoded in the URL."""
    safe_url = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe_url}|{slack_escape(label)}>"


def change_text(change: ChangeRow) -> str:
    if change.before:
        return f"{change.field}: {change.before} → {change.after}"
    return f"{change.field}: {change.after}"


def more_text(count: int) -> str:
    return f"…and {count} more"


def clean(message: Message) -> Message:
    """Every text of ``message`` without control or bidi characters."""
    def c(text: str) -> str:
        return clean_text(text)
    return replace(
        message,
        summary=c(message.summary),
        facts=tuple(Fact(c(f.label), c(f.value)) for f in message.facts),
        notes=tuple(c(n) for n in message.notes),
        changes=tuple(ChangeRow(c(r.field), c(r.before), c(r.after)) for r in message.changes),
        link=c(message.link) if message.link else message.link,
        link_label=c(message.link_label),
        headline=tuple(Part(c(p.text), p.role, c(p.detail)) for p in message.headline),
        actor=c(message.actor),
        when=c(message.when),
    )


def byline(message: Message) -> str:
    """Who and when, e.g. ``Sam Taylor · Tue 12 May 2026, 14:04 BST``."""
    return " · ".join(one_line(t) for t in (message.actor, message.when) if t.strip())


# --- console -----------------------------------------------------------------------------


def format_console(message: Message) -> Payload:
    """One line: the summary, with the values of the changes when there are few."""
    return {"text": headline(clean(message), SUMMARY_LIMIT, detailed=True)}


# --- Slack -------------------------------------------------------------------------------


def format_slack(message: Message) -> Payload:
    """Block Kit: a header, facts as fields, notes, what changed, who and when, a button."""
    message = clean(message)
    blocks: list[dict[str, Any]] = [_slack_header(message)]
    if message.facts:
        fields = [_slack_field(fact) for fact in message.facts[:SLACK_FIELDS_MAX]]
        blocks.append({"type": "section", "fields": fields})
    if message.notes:
        notes = "\n".join(slack_escape(one_line(note)) for note in message.notes)
        blocks.append(_slack_section(notes))
    if message.changes:
        blocks.append(_slack_section(_slack_changes(message.changes)))
    who = byline(message)
    if who:
        blocks.append({"type": "context", "elements": [
            _mrkdwn(cut_escaped(slack_escape(who), 300))]})
    if message.link and len(message.link) <= SLACK_URL_LIMIT:
        label = truncate(one_line(message.link_label or "Open in HireHop"), SLACK_BUTTON_LIMIT)
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "open_in_hirehop", "text": _plain_text(label),
            "url": message.link}]})
    text = cut_escaped(slack_escape(headline(message, SUMMARY_LIMIT)), SLACK_TEXT_LIMIT)
    return {"text": text, "blocks": blocks}


def _slack_header(message: Message) -> dict[str, Any]:
    # plain_text cannot style, mention or link, and Slack shows it as sent (it
    # escapes it itself), so it is not entity-escaped; "<" and ">" become look-alikes
    # all the same, so that no "<!channel>" is ever in the payload.
    return {"type": "header", "text": _plain_text(headline(message, SLACK_HEADER_LIMIT))}


def _plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text.translate(_ANGLES) or "HireHop", "emoji": False}


def _slack_changes(changes: Sequence[ChangeRow]) -> str:
    heading = "*What changed*"
    lines: list[str] = []
    budget = SLACK_SECTION_LIMIT - len(heading) - 40  # room for "…and N more"
    for row in changes[:CHANGES_SHOWN]:
        line = "• " + _slack_change(row)
        if len(line) + 1 > budget:
            break
        lines.append(line)
        budget -= len(line) + 1
    more = len(changes) - len(lines)
    if more:
        lines.append(more_text(more))
    return "\n".join([heading, *lines])


def _slack_change(row: ChangeRow) -> str:
    field = f"*{slack_escape(truncate(row.field, 100))}*"
    after = slack_escape(truncate(row.after, CHAT_VALUE_LIMIT))
    if row.before:
        return f"{field}: {slack_escape(truncate(row.before, CHAT_VALUE_LIMIT))} → {after}"
    return f"{field}: {after}"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " ", "verbatim": True}


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(cut_escaped(text, SLACK_SECTION_LIMIT))}


def _slack_field(fact: Fact) -> dict[str, Any]:
    label = cut_escaped(slack_escape(one_line(fact.label)), 100)
    value = cut_escaped(slack_escape(one_line(fact.value)), SLACK_FIELD_LIMIT - len(label) - 3)
    return _mrkdwn(f"*{label}*\n{value}")


def cut_escaped(text: str, limit: int) -> str:
    """Cut already-escaped text to ``limit`` characters without splitting an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


# --- Telegram ----------------------------------------------------------------------------


def format_telegram(message: Message) -> Payload:
    """HTML: the summary in bold, bold labels, "What changed", who and when, a link.

    At most 4096 visible characters: what changed gets the room it needs (at least
    half when the details are long) and ends with "…and N more" when not all fit.
    """
    message = clean(message)
    head = [_Line(headline(message, SUMMARY_LIMIT), "<b>", "</b>")]
    tail = []
    who = byline(message)
    if who:
        tail.append(_Line(who, "<i>", "</i>"))
    if message.link:
        url = html.escape(message.link, quote=True)
        tail.append(_Line(truncate(one_line(message.link_label or message.link), 200),
                          f'<a href="{url}">', "</a>"))
    details = [_Line.labelled(truncate(f.label, 100) + ":", " " + one_line(f.value))
               for f in message.facts]
    details += [_Line(one_line(note)) for note in message.notes]
    room = TELEGRAM_LIMIT - len(head[0].plain) - _cost(tail)
    changes = _telegram_changes(message.changes, max(room - _cost(details), room // 2))
    shown, _ = _fit(details, room - _cost(changes) - 1, cut_last=True)
    sections = [head, shown, changes, tail]
    return {"text": "\n\n".join("\n".join(line.html() for line in section)
                                 for section in sections if section), "parse_mode": "HTML"}


def _telegram_changes(rows: Sequence[ChangeRow], room: int) -> list[_Line]:
    """"What changed" and its lines in at most ``room`` characters (see :func:`_cost`)."""
    if not rows:
        return []
    heading = _Line("What changed", "<b>", "</b>")
    lines = []
    for row in map(_short, rows[:CHANGES_SHOWN]):
        lines.append(_Line.labelled(row.field, change_text(row)[len(row.field):], prefix="• "))
    reserve = len(more_text(len(rows))) + 1
    shown, _ = _fit(lines, room - 1 - (len(heading.plain) + 1) - reserve)
    more = len(rows) - len(shown)
    return [heading, *shown, *([_Line(more_text(more))] if more else [])]


def _cost(section: Sequence[_Line]) -> int:
    """Visible characters a section adds after another: a blank line, then its lines."""
    return 1 + sum(len(line.plain) + 1 for line in section) if section else 0


@dataclass(frozen=True)
class _Line:
    """One line of a Telegram message: its visible text, markup around it, a bold label."""

    plain: str
    start: str = ""
    end: str = ""
    bold: tuple[int, int] = (0, 0)  # plain[i:j] is shown in bold

    @classmethod
    def labelled(cls, label: str, rest: str, prefix: str = "") -> _Line:
        """``prefix`` + **label** + ``rest``, e.g. "• **Status**: Booked → Cancelled"."""
        return cls(prefix + label + rest, bold=(len(prefix), len(prefix) + len(label)))

    def cut(self, limit: int) -> _Line:
        i, j = self.bold
        return _Line(truncate(self.plain, limit), self.start, self.end,
                     (min(i, limit - 1), min(j, limit - 1)))

    def html(self) -> str:
        i, j = self.bold
        text = self.plain
        inner = (_h(text[:i]) + "<b>" + _h(text[i:j]) + "</b>" + _h(text[j:]) if j > i
                 else _h(text))
        return f"{self.start}{inner}{self.end}"


def _fit(lines: Sequence[_Line], room: int, *, cut_last: bool = False) -> tuple[list[_Line], int]:
    """As many lines as fit in ``room`` visible characters (each costs its length + 1)."""
    kept: list[_Line] = []
    for line in lines:
        need = len(line.plain) + 1
        if need > room:
            if cut_last and room > 20:
                kept.append(line.cut(room - 1))
            break
        kept.append(line)
        room -= need
    return kept, len(lines) - len(kept)


def _short(row: ChangeRow) -> ChangeRow:
    return ChangeRow(truncate(row.field, 100), truncate(row.before, CHAT_VALUE_LIMIT),
                     truncate(row.after, CHAT_VALUE_LIMIT))


def _h(text: str) -> str:
    return html.escape(text, quote=False)


# --- email -------------------------------------------------------------------------------


def format_email(message: Message) -> Payload:
    """A one-line subject, a plain text part, and an HTML part with the changes as a table."""
    message = clean(message)
    subject = headline(message, EMAIL_SUBJECT_LIMIT)
    return {"subject": subject, "text": _email_text(message), "html": _email_html(message)}


def _email_text(message: Message) -> str:
    sections = [[message.summary]]
    sections.append([f"{fact.label}: {fact.value}" for fact in message.facts] + list(message.notes))
    shown = message.changes[:EMAIL_CHANGES_SHOWN]
    more = len(message.changes) - len(shown)
    sections.append((["What changed:"] + [f"  {change_text(c)}" for c in shown]
                     + ([f"  {more_text(more)}"] if more else [])) if shown else [])
    sections.append(([f"By: {message.actor}"] if message.actor else [])
                    + ([f"When: {message.when}"] if message.when else []))
    if message.link:
        sections.append([f"{message.link_label or 'Link'}: {message.link}"])
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _email_html(message: Message) -> str:
    e = html.escape
    out = [f"<p><strong>{e(message.summary)}</strong></p>"]
    if message.facts:
        rows = "".join(f"<tr><th align='left'>{e(f.label)}</th><td>{e(f.value)}</td></tr>"
                       for f in message.facts)
        out.append(f"<table>{rows}</table>")
    out += [f"<p>{e(note)}</p>" for note in message.notes]
    shown = message.changes[:EMAIL_CHANGES_SHOWN]
    if shown:
        rows = "".join(
            f"<tr><td>{e(c.field)}</td><td>{e(c.before)}</td><td>{e(c.after)}</td></tr>"
            for c in shown
        )
        more = len(message.changes) - len(shown)
        out.append(
            "<p><strong>What changed</strong></p>"
            "<table border='1' cellpadding='4' cellspacing='0'>"
            f"<tr><th>Field</th><th>From</th><th>To</th></tr>{rows}</table>"
            + (f"<p>{e(more_text(more))}</p>" if more else "")
        )
    who = byline(message)
    if who:
        out.append(f"<p><small>{e(who)}</small></p>")
    if message.link:
        out.append(f"<p><a href=\"{e(message.link)}\">{e(message.link_label or message.link)}</a></p>")
    return "<html><body>" + "".join(out) + "</body></html>"


FORMATTERS: dict[str, Callable[[Message], Payload]] = {
    "console": format_console,
    "slack": format_slack,
    "telegram": format_telegram,
    "email": format_email,
}

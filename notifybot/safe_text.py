"""Text from a webhook made safe to show: no terminal escapes, control or bidi characters.

A payload must not recolour, retitle or clear the terminal of whoever reads the
console channel, ``deliveries`` or the logs, ring its bell, or reverse the text a
person reads (U+202E). :func:`clean_text` removes such characters (messages);
:func:`escape_unsafe` shows them escaped (logs, where what was sent should stay
visible). Pure: no I/O.
"""

from __future__ import annotations

import json
import re

# Terminal escape sequences (CSI, OSC, other ESC sequences) and single control or
# bidi-override characters: a payload must not recolour a terminal, ring its bell
# or reverse the text a person reads.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                      r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?|\x1b.?|\x9b[0-?]*[ -/]*[@-~]?")
# C0 and C1 controls (line breaks and tabs kept for callers that fold lines), DEL,
# bidi controls, lone surrogates and private-use characters.
_UNSAFE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u061c\u200e\u200f"
                     "\u202a-\u202e\u2066-\u2069\ud800-\udfff\ue000-\uf8ff"
                     "\U000f0000-\U0010ffff]")
# ...and, where nothing is folded afterwards (logs), the other line breaks too.
_SHOWN_UNSAFE = re.compile(f"{_UNSAFE.pattern}|[\x0b-\x0d\x85\u2028\u2029]")


def clean_text(text: str) -> str:
    """``text`` without terminal escapes, control characters or bidi controls.

    Line breaks and tabs are kept (as they are) for the callers that fold lines.
    """
    if text.isprintable():  # the usual case: nothing to remove
        return text
    return _UNSAFE.sub("", _ESCAPES.sub("", text))


def escape_unsafe(text: str, *, as_json: bool = False) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``, ``\\u202e``).

    For logs, where what was received should stay visible but must not act on the
    terminal. Line feeds and tabs are kept. ``as_json`` writes JSON escapes
    (``\\u001b``), for text that is already a JSON document.
    """
    if text.isprintable():
        return text
    if as_json:
        return _SHOWN_UNSAFE.sub(lambda m: json.dumps(m.group())[1:-1], text)
    return _SHOWN_UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

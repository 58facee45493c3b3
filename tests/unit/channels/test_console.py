"""The console channel prints one clean line, whatever the payload holds."""

from __future__ import annotations

import io

from notifybot.channels.console import ConsoleSender


async def test_prints_one_line_prefixed_with_the_channel() -> None:
    stream = io.StringIO()
    receipt = await ConsoleSender("log", stream).send({"text": "Job 1: Provisional → Booked"})
    assert stream.getvalue() == "[log] Job 1: Provisional → Booked\n"
    assert receipt.detail == "printed"


async def test_terminal_escapes_controls_and_bidi_never_reach_the_terminal() -> None:
    stream = io.StringIO()
    hostile = ("\x1b[31mred\x1b[0m \x1b]0;new title\x07 \x07bell \x9b2J \u202eevil\u202c "
               "\x00nul\x7f\r\nNext: line\u2028more")
    await ConsoleSender("log", stream).send({"text": hostile})
    assert stream.getvalue() == "[log] red bell evil nul Next: line more\n"

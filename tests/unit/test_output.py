"""Command output: aligned tables, colour only on a terminal, progress only on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from notifybot.cli import main
from notifybot.conditions import Condition
from notifybot.output import Progress, condition_text, printable, table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ROWS = [["1", "sent", "ok"], ["22", "dead", "slack: channel_not_found"]]


def test_columns_align_on_the_widest_cell() -> None:
    text = table(["ID", "STATUS", "LAST ERROR"], ROWS, empty="none", stream=io.StringIO())
    assert text.splitlines() == [
        "ID  STATUS  LAST ERROR",
        "1   sent    ok",
        "22  dead    slack: channel_not_found",
    ]


def test_long_cells_are_cut_with_an_ellipsis() -> None:
    text = table(["X"], [["y" * 100]], empty="none", stream=io.StringIO())
    assert text.splitlines()[1] == "y" * 59 + "…"


def test_status_is_coloured_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    coloured = table(["ID", "STATUS"], [["1", "dead"]], empty="", status_column=1, stream=Terminal())
    assert "\033[31mdead\033[0m" in coloured
    plain = table(["ID", "STATUS"], [["1", "dead"]], empty="", status_column=1, stream=io.StringIO())
    assert "\033[" not in plain
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\033[" not in table(["S"], [["dead"]], empty="", status_column=0, stream=Terminal())


def test_an_empty_table_says_so() -> None:
    assert table(["ID"], [], empty="no deliveries") == "no deliveries"


def test_progress_is_drawn_in_place_on_a_terminal_and_silent_elsewhere() -> None:
    tty = Terminal()
    progress = Progress(3, "queued again", stream=tty)
    for done in (1, 2, 3):
        progress.update(done)
    progress.finish()
    assert tty.getvalue() == "\rqueued again: 1/3\rqueued again: 2/3\rqueued again: 3/3\n"
    pipe = io.StringIO()
    quiet = Progress(3, "queued again", stream=pipe)
    quiet.update(1)
    quiet.finish()
    assert pipe.getvalue() == ""


def test_deliveries_needs_no_secrets_and_never_creates_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    config = tmp_path / "subscriptions.toml"
    config.write_text(f'[server]\ndatabase = "sqlite:///{tmp_path / "n.db"}"\n'
                      '[hirehop]\nexport_key = "${HIREHOP_EXPORT_KEY}"\n'
                      '[channels.team]\ntype = "slack"\ntoken = "${SLACK_BOT_TOKEN}"\n'
                      'channel = "C0123"\n')
    with pytest.raises(SystemExit) as exit_:
        main(["deliveries", "-c", str(config)])
    assert exit_.value.code == 1
    assert "no notifybot database at" in capsys.readouterr().err
    assert not (tmp_path / "n.db").exists()
    with pytest.raises(SystemExit):
        main(["migrate", "-c", str(config)])
    with pytest.raises(SystemExit) as exit_:
        main(["deliveries", "--status", "failed", "-c", str(config)])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.endswith("no deliveries\n")


def test_control_and_bidi_characters_are_shown_as_escapes() -> None:
    assert printable("plain £ ► text") == "plain £ ► text"
    assert printable("red\x1b[31m\u202eevil\u2066\x7f") == "red\\x1b[31m\\u202eevil\\u2066\\x7f"
    text = table(["ERROR"], [["\x1b[2Jwiped\nline"]], empty="", stream=io.StringIO())
    assert "\x1b" not in text and "\\x1b[2Jwiped\\x0aline" in text


def test_conditions_read_as_written_not_as_python() -> None:
    assert condition_text(Condition("changes.STATUS.to", "in", ("Booked", 5))) == \
        "changes.STATUS.to in Booked, 5"
    assert condition_text(Condition("data.DEPOT", "gt", 3)) == "data.DEPOT > 3"
    assert condition_text(Condition("user_name", "ne", "Sam Taylor")) == 'user_name ≠ "Sam Taylor"'
    assert condition_text(Condition("data.VIP", "exists", False)) == "data.VIP not exists"
    assert condition_text(Condition("data.X", "matches", re.compile("^A"))) == "data.X matches /^A/"

"""The command line as an operator meets it: one line per mistake, no traceback, no secrets needed
where nothing is sent. Commands run in this process (``cli.run``) against files in tmp_path."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest

from notifybot import cli
from notifybot.lint import glob_error, lint, path_problem
from notifybot.store import NewDelivery
from notifybot.store.schema import SQLITE_MIGRATIONS
from notifybot.store.sqlite import SQLiteStore

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "samples" / "job.status.updated.constructed.json"


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HIREHOP_EXPORT_KEY", "SLACK_BOT_TOKEN", "NOTIFYBOT_DATABASE", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run(*argv: str) -> int:
    return cli.run(list(argv))


def config(tmp_path: Path, body: str = "", *, database: str | None = None) -> Path:
    path = tmp_path / "subscriptions.toml"
    path.write_text(f'[server]\ndatabase = "{database or "sqlite:///" + str(tmp_path / "n.db")}"\n'
                    '[hirehop]\nexport_key = "${HIREHOP_EXPORT_KEY}"\n' + body)
    return path


SLACK = """
[channels.team]
type = "slack"
token = "${SLACK_BOT_TOKEN}"
channel = "C0123"
  [[channels.team.subscriptions]]
  events = ["job.*"]
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  name = "everything"
  events = ["*"]
"""


# --- conventions -------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("notifybot ")


def test_a_missing_file_says_how_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check", "-c", str(tmp_path / "nosuch.toml")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuch.toml: file not found" in err
    assert "notifybot init" in err and "NOTIFYBOT_CONFIG" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["deliveries", "--limit", "-5"], "argument --limit: must be at least 1, not -5"),
    (["deliveries", "--limit", "x"], "argument --limit: 'x' is not a whole number"),
    (["deliveries", "--since", "yesterday"], "is neither a duration (30m, 2h, 1d) nor a date"),
    (["deliveries", "--status", "lost"], "argument --status: invalid choice: 'lost'"),
    (["replay", "0"], "must be at least 1"),
])
def test_bad_option_values_are_usage_errors(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_since_takes_durations_and_dates() -> None:
    now = 1_800_000_000.0
    from datetime import UTC, datetime
    moment = datetime.fromtimestamp(now, UTC)
    assert cli.since("2h", now=moment) == now - 7200
    assert cli.since("90", now=moment) == now - 90
    assert cli.since("1d", now=moment) == now - 86400
    assert cli.since("2026-05-13T08:00:00+00:00") == datetime(2026, 5, 13, 8, tzinfo=UTC).timestamp()


# --- init -----------------------------------------------------------------------------------


def test_init_writes_a_starter_that_checks_and_never_overwrites(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("init", str(tmp_path)) == 0
    out = capsys.readouterr().out
    written = tmp_path / "subscriptions.toml"
    assert f"wrote {written}" in out and "notifybot check -c" in out and "HIREHOP_EXPORT_KEY" in out
    text = written.read_text()
    assert '[channels.log]\ntype = "console"' in text and '# type = "slack"' in text
    assert '# type = "telegram"' in text and '# type = "email"' in text

    monkeypatch.setenv("HIREHOP_EXPORT_KEY", "KEY-123456")
    monkeypatch.chdir(tmp_path)
    assert run("check", "--strict", "-c", str(written)) == 0, capsys.readouterr()
    capsys.readouterr()

    written.write_text("# mine\n")
    assert run("init", str(tmp_path)) == 1
    assert "already exists; left as it is" in capsys.readouterr().err
    assert written.read_text() == "# mine\n"
    assert run("init", str(written)) == 1
    assert "not a folder" in capsys.readouterr().err
    assert run("init", str(tmp_path / "new" / "dir")) == 0
    assert (tmp_path / "new" / "dir" / "subscriptions.toml").read_text() == text


# --- check ----------------------------------------------------------------------------------

TYPOS = """
[channels.team]
type = "console"
  [[channels.team.subscriptions]]
  events = ["job.status.update", "jbo.*", "contact.person.created"]
  when = { "change.STATUS.to" = "Booked", "data.COMAPNY" = "x", "changes.STATUS.too" = 1 }
"""


def test_check_warns_about_what_was_probably_not_meant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIREHOP_EXPORT_KEY", "KEY-123456")
    path = config(tmp_path, '[server.x]\n' if False else TYPOS)
    text = path.read_text().replace("[server]\n", '[server]\ntemplates = "no_such_dir"\n')
    path.write_text(text.replace(str(tmp_path / "n.db"), str(tmp_path / "nodir" / "n.db")))
    assert run("check", "-c", str(path)) == 0
    out = capsys.readouterr().out.splitlines()
    sub = f"warning: {path}: channels.team.subscriptions[0]"
    assert f"{sub}.events: 'job.status.update' is not a known HireHop event (did you mean " \
           "'job.status.updated'?) (other events exist; ignore this if HireHop sends it)" in out
    assert any(line.startswith(f"{sub}.events: 'jbo.*' matches none of the known") for line in out)
    assert not any("contact.person.created" in line for line in out), "a family with unknown names"
    assert any(line.startswith(f"{sub}.when.change.STATUS.to: no HireHop event has 'change' "
                               "(did you mean 'changes'?)") for line in out)
    assert f"{sub}.when.data.COMAPNY: no known field 'COMAPNY'; did you mean 'COMPANY'?" in out
    assert any(line.startswith(f"{sub}.when.changes.STATUS.too: a change has only 'from' and 'to'")
               for line in out)
    assert any(line.startswith(f"warning: {path}: server.templates: folder ") for line in out)
    assert any(line.startswith(f"warning: {path}: server.database: folder ") for line in out)
    assert out[-1].startswith(f"{path}: OK with 7 warnings")

    assert run("check", "--strict", "-c", str(path)) == 1
    assert "--strict makes warnings errors" in capsys.readouterr().err


def test_check_errors_where_nothing_could_match_and_names_every_missing_variable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, SLACK + '\n  [[channels.log.subscriptions]]\n  events = ["job.["]\n'
                  '  template = "nosuch"\n')
    assert run("check", "-c", str(path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"error: {path}: channels.log.subscriptions[1].events: 'job.[': '[' is never closed " \
           "with ']', so it can never match an event" in err
    assert any(line.startswith(f"error: {path}: channels.log.subscriptions[1].template: no template "
                               "nosuch.j2") for line in err)
    assert f"error: {path}: hirehop.export_key: environment variable HIREHOP_EXPORT_KEY is not set" in err
    assert f"error: {path}: channels.team.token: environment variable SLACK_BOT_TOKEN is not set" in err


def test_a_template_that_extends_itself_is_named_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIREHOP_EXPORT_KEY", "KEY-123456")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "default.j2").write_text('{# mine #}\n{% extends "default.j2" %}\n')
    path = config(tmp_path)
    path.write_text(path.read_text().replace("[server]\n", '[server]\ntemplates = "mine"\n'))
    assert run("check", "-c", str(path)) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'default.j2'}: line 2: extends itself" in err
    assert "RecursionError" not in err


def test_subscribe_warns_like_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, SLACK)
    assert run("subscribe", "log", "job.status.update", "--when", "change.STATUS.to=Booked",
               "-c", str(path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "channels.log: subscribed to job.status.update when change.STATUS.to = Booked"
    assert out[1].startswith(f"warning: {path}: channels.log.subscriptions[1].events: "
                             "'job.status.update' is not a known HireHop event")
    assert out[2].startswith(f"warning: {path}: channels.log.subscriptions[1].when.change.STATUS.to")


def test_lint_rules() -> None:
    assert glob_error("job.[") and glob_error("job.]") and glob_error("job.[!")
    assert glob_error("job.[abc]") is None and glob_error("job.*") is None and glob_error("[!x]y") is None
    assert path_problem("data.COMPANY") is None and path_problem("data.CUSTOM_FIELDS.po.value") is None
    assert path_problem("data.MY_OWN_FIELD") is None, "custom fields exist: only near-misses warn"
    assert path_problem("data.company") == "field names are upper case: 'COMPANY', not 'company'"
    assert path_problem("user_email.x") and path_problem("changes") and path_problem("changes.X.at")
    assert path_problem("changes.STATUS.to") is None and path_problem("job") is None


def test_the_shipped_example_and_starter_have_no_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifybot import config_file
    for path in (ROOT / "subscriptions.toml", ROOT / "notifybot" / "starter.toml"):
        loaded = config_file.validate(path, path.read_text())
        assert [f for f in lint(loaded, {"default.j2"}) if f.key != "server.database"] == []


# --- preview --------------------------------------------------------------------------------


def test_preview_needs_no_secrets_and_reads_stdin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, SLACK)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(SAMPLE.read_bytes())))
    assert run("preview", "-", "-c", str(path)) == 0
    out = capsys.readouterr().out
    assert out.startswith("event job.status.updated, job 15471\n")
    assert "MATCH team (slack)" in out and "MATCH log (console) subscription everything" in out


@pytest.mark.parametrize(("body", "message"), [
    (b'{"event": "job.updated",\n "data": }', "not valid JSON: Expecting value at line 2, column 10"),
    (b"", "empty body"),
    (b"[1, 2]", "neither a JSON object"),
])
def test_preview_of_a_broken_event_says_where(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: bytes, message: str) -> None:
    path = config(tmp_path, SLACK)
    event = tmp_path / "event.json"
    event.write_bytes(body)
    assert run("preview", str(event), "-c", str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {event}: ") and message in err and "400" not in err


def test_preview_renders_the_event_even_when_a_template_fails_on_the_sample(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    # Fails on the built-in sample (job 1, no CLIENT), renders on the real event.
    (folder / "job.status.updated.j2").write_text(
        '{% extends "default.j2" %}{% block summary %}{{ data.CLIENT | length // '
        '(data.CLIENT | length) }} {{ data.CLIENT }}{% endblock %}')
    path = config(tmp_path, SLACK)
    path.write_text(path.read_text().replace("[server]\n", '[server]\ntemplates = "mine"\n'))
    assert run("preview", str(SAMPLE), "-c", str(path)) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: the template check on the built-in sample failed (")
    assert "Rendering your event anyway" in out
    assert '"text": "1 Alex Morgan' in out


def test_preview_escapes_control_and_bidi_characters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, SLACK)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"event": "job.updated\u202e", "job": 3,
                                 "data": {"JOB_NAME": "a\x1b[2Jb\u2066c"}}))
    assert run("preview", str(event), "-c", str(path)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\u2066" not in out
    assert "event job.updated, job 3" in out  # the name is stored and shown clean


# --- the database commands ---------------------------------------------------------------


def test_migrate_says_created_then_up_to_date_and_wants_its_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path)
    assert run("migrate", "-c", str(path)) == 0
    latest = len(SQLITE_MIGRATIONS)
    assert capsys.readouterr().out == (
        f"created the SQLite schema at {tmp_path / 'n.db'} (version {latest})\n")
    assert run("migrate", "-c", str(path)) == 0
    assert capsys.readouterr().out == (
        f"the SQLite schema at {tmp_path / 'n.db'} is up to date (version {latest})\n")
    nowhere = config(tmp_path, database=f"sqlite:///{tmp_path / 'nodir' / 'n.db'}")
    assert run("migrate", "-c", str(nowhere)) == 1
    assert "server.database: folder" in capsys.readouterr().err


def _seed(path: Path) -> None:
    from notifybot import config_file
    team = config_file.validate(path, path.read_text()).channels["team"].subscriptions[0].id
    asyncio.run(_seed_store(path.parent / "n.db", team))


async def _seed_store(db: Path, team: str) -> None:
    store = SQLiteStore(db)
    await store.migrate()
    now = time.time()
    for n in range(1, 5):
        event_id, _ = await store.add_event("job.updated", b"{}%d" % n, f"d{n}", "application/json",
                                            {}, now - 3600 * (4 - n))
        await store.route(event_id, [NewDelivery("team", team, "slack:x", 0, {"text": "t"}),
                                     NewDelivery("log", "everything", "console:log", 0, {"text": "t"})],
                          now - 3600 * (4 - n))
    claimed = await store.claim(now, 60, 100)
    assert len(claimed) == 8
    await store.mark_sent(2, "ok", now)
    await store.mark_dead(1, "slack: channel_not_found\x1b[31m", now)
    await store.release(list(range(3, 9)), now)
    await store.close()


def test_deliveries_filters_times_names_and_a_note_when_cut(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, SLACK)
    _seed(path)
    assert run("deliveries", "--channel", "log", "--limit", "2", "-c", str(path)) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:8] == ["ID", "EVENT", "NAME", "CHANNEL", "SUBSCRIPTION", "STATUS",
                                    "TRIES", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["8", "6"]
    assert all(" log " in line and " everything " in line for line in lines[1:])
    assert "(showing the newest 2; more match" in captured.err

    assert run("deliveries", "--since", "90m", "--json", "-c", str(path)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [8, 7, 6, 5]
    assert {"created_at", "subscription", "channel", "status"} <= rows[0].keys()

    assert run("deliveries", "--channel", "gone", "-c", str(path)) == 0
    captured = capsys.readouterr()
    assert captured.out == "no deliveries\n"
    assert "note: no channel 'gone' in" in captured.err and "(configured: team, log)" in captured.err

    assert run("deliveries", "--status", "dead", "-c", str(path)) == 0
    out = capsys.readouterr().out
    assert "job.*" in out, "an unnamed subscription is shown by its events"
    assert "\x1b" not in out and "channel_not_found\\x1b[31m" in out


def test_replay_says_why_nothing_was_queued(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, SLACK)
    _seed(path)
    assert run("replay", "999", "-c", str(path)) == 1
    assert capsys.readouterr().out.startswith("nothing queued: there is no delivery 999 (the newest is 8")
    assert run("replay", "2", "-c", str(path)) == 1
    assert "delivery 2 to log was sent; a delivery recorded as sent is never sent again" in \
        capsys.readouterr().out
    assert run("replay", "--event", "77", "-c", str(path)) == 1
    assert "event 77 has no deliveries" in capsys.readouterr().out
    assert run("replay", "1", "-c", str(path)) == 0
    assert capsys.readouterr().out.startswith("1 delivery queued again")
    assert run("replay", "--dead", "-c", str(path)) == 0
    assert capsys.readouterr().out == "nothing queued: no delivery is dead\n"


def test_a_database_that_cannot_be_reached_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, database="postgresql://nobody@127.0.0.1:1/none")
    assert run("migrate", "-c", str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_preview_says_whether_a_message_starts_or_joins_its_jobs_thread(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from notifybot.store.base import DeliveryStatus, Outcome, ThreadMark

    path = config(tmp_path, SLACK)

    async def a_thread_for_job_15471() -> None:
        store = SQLiteStore(tmp_path / "n.db")
        await store.migrate()
        try:
            event_id, _ = await store.add_event("job.created", b"{}", "d", "application/json",
                                                {}, time.time())
            destination = "slack:https://slack.com/api/:C0123"
            await store.route(event_id, [NewDelivery("team", "s", destination, 0.0, {"text": "x"},
                                                     thread_key="42:job:15471")], time.time())
            [claimed] = await store.claim(time.time(), 60, 1)
            mark = ThreadMark(destination, "42:job:15471", "1700000000.0001", root=True)
            await store.record([Outcome(claimed.id, DeliveryStatus.SENT, claimed.claim,
                                        handle=mark.handle, thread=mark)], time.time())
        finally:
            await store.close()

    asyncio.run(a_thread_for_job_15471())
    event = tmp_path / "event.json"
    for job, words in ((15471, "thread: joins job 15471's thread, as a reply"),
                       (16000, "thread: starts job 16000's thread")):
        event.write_text(json.dumps({"event": "job.updated", "job": job, "company_id": 42}))
        assert run("preview", str(event), "-c", str(path)) == 0
        out = capsys.readouterr().out
        assert words in out
        assert "log (console)" in out and out.count("thread: ") == 1  # the console never threads

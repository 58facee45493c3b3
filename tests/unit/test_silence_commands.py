"""``notifybot silence add | list | expire``: parsing, output, and the store round trip."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from notifybot.cli import parser
from notifybot.errors import ConfigError, NotifybotError
from notifybot.silence_commands import as_json, os_user, silence_add, silence_expire, silence_list
from notifybot.silences import Silence
from notifybot.store import DeliveryStatus, NewDelivery
from notifybot.store.sqlite import SQLiteStore

NOW = 1_800_000_000.0


def test_silence_commands_parse_as_documented() -> None:
    args = parser().parse_args(["silence", "add", "*", "--when", "job=15471", "--when",
                                "changes.STATUS.to=Booked", "--unless", "user_email=bot@x",
                                "--for", "2h", "--comment", "re-keying", "-c", "x.toml"])
    assert (args.run, args.channel, args.when, args.unless, args.duration, args.comment) == (
        silence_add, "*", ["job=15471", "changes.STATUS.to=Booked"], ["user_email=bot@x"], "2h",
        "re-keying")
    assert str(args.config) == "x.toml"
    listing = parser().parse_args(["silence", "list", "--json"])
    assert (listing.run, listing.json, listing.all) == (silence_list, True, False)
    expire = parser().parse_args(["silence", "expire", "7"])
    assert (expire.run, expire.silence_id) == (silence_expire, 7)


def test_list_json_names_every_field() -> None:
    silence = Silence(3, "ops", {"job": 15471}, {}, "re-keying", "sam", NOW, NOW + 7200)
    assert as_json(silence, "job eq 15471", NOW + 7200) == {
        "id": 3, "channel": "ops", "when": {"job": 15471}, "unless": {},
        "conditions": "job eq 15471", "comment": "re-keying", "created_by": "sam",
        "starts_at": NOW, "expires_at": NOW + 7200, "state": "expired"}


def test_the_os_user_makes_the_silence() -> None:
    assert os_user() == getpass.getuser()


CONFIG = """
[server]
database = "sqlite:///{db}"
timezone = "Europe/London"
[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"
[channels.ops]
type = "console"
hours = "08:00-18:00"
  [[channels.ops.subscriptions]]
  events = ["job.*"]
[channels.accounts]
type = "console"
  [[channels.accounts.subscriptions]]
  events = ["invoice.*"]
  digest = {{ at = "17:30" }}
"""


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(list(argv))
    code = await args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db"), encoding="utf-8")
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()  # as `notifybot serve` does at start
    await store.close()
    return path


async def test_add_list_and_expire_a_silence(config_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    c = ["-c", str(config_path)]
    code, out, err = await run(capsys, "silence", "add", "ops", "--when", "job=15471", "--for",
                               "2h", "--comment", "re-keying", *c)
    assert code == 0 and out == "1\n"
    assert "silence 1: ops, job eq 15471, for 2h" in err
    code, out, _ = await run(capsys, "silence", "list", "--json", *c)
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert {k: listed[k] for k in ("id", "channel", "when", "conditions", "comment", "created_by",
                                   "state")} == {
        "id": 1, "channel": "ops", "when": {"job": 15471}, "conditions": "job eq 15471",
        "comment": "re-keying", "created_by": getpass.getuser(), "state": "active"}
    assert 7199 < listed["expires_at"] - listed["starts_at"] <= 7200
    _, out, _ = await run(capsys, "silence", "list", *c)
    assert out.splitlines()[0].split() == ["ID", "CHANNEL", "CONDITIONS", "COMMENT", "BY",
                                           "STARTS", "EXPIRES", "STATE"]
    code, out, _ = await run(capsys, "silence", "expire", "1", *c)
    assert code == 0 and "silence 1 expired" in out
    assert (await run(capsys, "silence", "list", "--json", *c))[1] == ""
    _, out, _ = await run(capsys, "silence", "list", "--all", "--json", *c)
    assert json.loads(out)["state"] == "expired"
    with pytest.raises(NotifybotError, match="no active silence 1"):
        await run(capsys, "silence", "expire", "1", *c)


@pytest.mark.parametrize(("argv", "message"), [
    (["nope", "--for", "1h", "--comment", "x"], "no channel 'nope'"),
    (["*", "--for", "soon", "--comment", "x"], "--for: must be a duration"),
    (["*", "--for", "1h", "--comment", "x", "--when", "changes.STATUS.to=Bookd"], "Bookd"),
])
async def test_a_bad_silence_is_refused_and_nothing_stored(
        config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await run(capsys, "silence", "add", *argv, "-c", str(config_path))
    assert (await run(capsys, "silence", "list", "--all", "--json", "-c", str(config_path)))[1] == ""


async def test_preview_says_which_silence_window_or_digest_applies(
        config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIREHOP_EXPORT_KEY", "KEY-123456")
    c = ["-c", str(config_path)]
    await run(capsys, "silence", "add", "ops", "--when", "job=15471", "--for", "1h", "--comment",
              "re-keying", *c)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"event": "job.updated", "job": 15471, "data": {"NUMBER": 15471}}))
    _, out, _ = await run(capsys, "preview", str(event), *c)
    assert "silenced: silenced by silence 1" in out
    event.write_text(json.dumps({"event": "job.updated", "job": 2, "data": {"NUMBER": 2}}))
    _, out, _ = await run(capsys, "preview", str(event), *c)
    assert ("now: sent at once" in out) or ("held: outside active hours (08:00-18:00" in out)
    event.write_text(json.dumps({"event": "invoice.status.updated", "job": 2}))
    _, out, _ = await run(capsys, "preview", str(event), *c)
    assert "digested: digest of" in out and "sent at" in out


async def test_deliveries_lists_silenced_ones_with_their_note(
        config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db")
    try:
        event_id, _ = await store.add_event("job.updated", b"{}", "d", "application/json", {}, 1.0)
        await store.route(event_id, [NewDelivery("ops", "s", "fake:ops", 0.0, {"text": "x"},
                                                 status=DeliveryStatus.SILENCED,
                                                 note="silenced by silence 4 (sam: why)"),
                                     NewDelivery("accounts", "s", "fake:a", 0.0, {"text": "y"},
                                                 not_before=NOW)], 1.0)
    finally:
        await store.close()
    _, out, _ = await run(capsys, "deliveries", "--status", "silenced", "-c", str(config_path))
    assert "silenced" in out and "silenced by silence 4" in out and "accounts" not in out
    _, out, _ = await run(capsys, "deliveries", "--json", "-c", str(config_path))
    rows = {row["channel"]: row for row in map(json.loads, out.splitlines())}
    assert rows["accounts"]["not_before"] == NOW and rows["ops"]["status"] == "silenced"


async def test_a_silence_made_before_the_server_ever_ran_makes_the_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "new.db"), encoding="utf-8")
    code, out, err = await run(capsys, "silence", "add", "*", "--for", "30m", "--comment",
                               "night works", "-c", str(path))
    assert (code, out) == (0, "1\n") and "made a new database" in err
    _, out, _ = await run(capsys, "silence", "list", "--json", "-c", str(path))
    assert json.loads(out)["channel"] == "*"

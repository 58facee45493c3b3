"""Editing subscriptions from the command line: the edit is exact, everything else byte for byte."""

from __future__ import annotations

import io
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from notifybot import config_file, editing
from notifybot.cli import main
from notifybot.commands import subscription_rows
from notifybot.config import load
from notifybot.editing import Unsubscribed
from notifybot.errors import ConfigError
from notifybot.events import parse_event

SHIPPED = Path(__file__).resolve().parents[2] / "subscriptions.toml"
ENV = {"HIREHOP_EXPORT_KEY": "hh-key"}

# Comments above, inside and after tables, inline comments, blank lines, odd spacing,
# indented subscriptions, and tables after the channels.
CONFIG = """\
# notifybot for the warehouse  -- a comment at the top
   # an indented comment, then a blank line

[server]   # a header with a comment
bind="127.0.0.1:8080"      # odd spacing
#  templates = "mine"

[hirehop]
export_key = "${HIREHOP_EXPORT_KEY}"
job_status = { 3 = "Prepared" }

# ---- team --------------------------------------------------------------
[channels.team]   # console for now
type = "console"
# a comment inside the channel table

    [[channels.team.subscriptions]]   # two patterns
    events = [ "job.created", "job.status.updated" ]  # keep this comment
    # a comment directly under the keys

    [[channels.team.subscriptions]]
    name="booked"
    events=["job.status.updated"]
    when={"changes.STATUS.to"="Booked"}

# a comment introducing ops, after a blank line


[channels.ops]
type = "console"
pace = 0.5
# directly under ops' keys

[channels.quiet]     # nobody subscribed yet
type = "console"

[delivery]
max_attempts = 5   # after the channels

# the end
"""

TEAM_LAST = '    when={"changes.STATUS.to"="Booked"}\n'
BOOKED_SUB = ('\n    [[channels.team.subscriptions]]\n    name="booked"\n'
              '    events=["job.status.updated"]\n' + TEAM_LAST)


def after(text: str, line: str) -> int:
    """The offset just past ``line``, which must occur once in ``text``."""
    assert text.count(line) == 1
    return text.index(line) + len(line)


def subscribe(text: str, channel: str, *events: str, when: dict[str, Any] | None = None,
              unless: dict[str, Any] | None = None, name: str | None = None,
              template: str | None = None) -> str:
    return editing.subscribe(text, channel, list(events), when or {}, unless or {}, name, template)


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "subscriptions.toml"
    path.write_bytes(text.encode())
    return path


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    code = exited.value.code
    assert isinstance(code, int)
    return code


def status_event(to: int) -> Any:
    return parse_event({"event": "job.status.updated", "job": 15471,
                        "changes": {"STATUS": {"from": "1", "to": str(to)}}})


# --- subscribe: where the new table goes, and nothing else changes ----------------------


def test_subscribe_appends_after_the_channels_last_subscription_and_keeps_every_other_byte() -> None:
    new = subscribe(CONFIG, "team", "invoice.status.updated", when={"changes.STATUS.to": "Paid"})
    at = after(CONFIG, TEAM_LAST)
    inserted = ('\n    [[channels.team.subscriptions]]\n'
                '    events = ["invoice.status.updated"]\n'
                '    when = { "changes.STATUS.to" = "Paid" }\n')
    assert new == CONFIG[:at] + inserted + CONFIG[at:]
    team = tomllib.loads(new)["channels"]["team"]["subscriptions"]
    assert team[-1] == {"events": ["invoice.status.updated"], "when": {"changes.STATUS.to": "Paid"}}


def test_subscribe_to_a_channel_without_subscriptions_goes_before_the_tables_that_follow() -> None:
    new = subscribe(CONFIG, "quiet", "job.created")
    at = after(CONFIG, '[channels.quiet]     # nobody subscribed yet\ntype = "console"\n')
    # Indented like the file's other subscriptions; [delivery] still comes after it.
    assert new == CONFIG[:at] + '\n    [[channels.quiet.subscriptions]]\n    events = ["job.created"]\n' \
        + CONFIG[at:]
    assert new.index("[[channels.quiet.subscriptions]]") < new.index("[delivery]")


def test_comments_directly_under_a_channels_keys_stay_with_it() -> None:
    new = subscribe(CONFIG, "ops", "job.*", "invoice.*")
    at = after(CONFIG, "# directly under ops' keys\n")
    assert new == CONFIG[:at] + ('\n    [[channels.ops.subscriptions]]\n'
                                 '    events = ["job.*", "invoice.*"]\n') + CONFIG[at:]


def test_subscribe_writes_every_key_with_typed_values_and_quoted_dotted_paths() -> None:
    new = subscribe(CONFIG, "ops", "job.updated",
                    when={"data.DEPOT": 2, "data.TOTAL": {"gt": 2.5}, "changes.STATUS.to": ["Booked", 5]},
                    unless={"user_email": "robot@example.com", "data.VIP": True},
                    name="depot 2", template="default")
    inserted = new[after(CONFIG, "# directly under ops' keys\n"):new.index("\n[channels.quiet]")]
    assert inserted == (
        '\n    [[channels.ops.subscriptions]]\n'
        '    events = ["job.updated"]\n'
        '    when = { "data.DEPOT" = 2, "data.TOTAL" = { gt = 2.5 }, '
        '"changes.STATUS.to" = ["Booked", 5] }\n'
        '    unless = { user_email = "robot@example.com", "data.VIP" = true }\n'
        '    template = "default"\n'
        '    name = "depot 2"\n')
    sub = tomllib.loads(new)["channels"]["ops"]["subscriptions"][0]
    assert sub["when"] == {"data.DEPOT": 2, "data.TOTAL": {"gt": 2.5}, "changes.STATUS.to": ["Booked", 5]}
    assert sub["unless"]["data.VIP"] is True


def test_strings_are_escaped() -> None:
    new = subscribe(CONFIG, "ops", "job.updated", when={"data.NOTE": 'say "hi"\\ \n'})
    assert tomllib.loads(new)["channels"]["ops"]["subscriptions"][0]["when"] == {
        "data.NOTE": 'say "hi"\\ \n'}


def test_subscriptions_of_a_channel_split_across_the_file_stay_in_order() -> None:
    text = ('[hirehop]\nexport_key = "k"\n\n[channels.a]\ntype = "console"\n\n'
            '[channels.b]\ntype = "console"\n\n'
            '[[channels.a.subscriptions]]\nevents = ["job.created"]\n\n'
            '[delivery]\nmax_attempts = 3\n\n'
            '[[channels.a.subscriptions]]   # after [delivery]\nevents = ["job.updated"]\n')
    new = subscribe(text, "a", "invoice.*")
    assert new == text + '\n[[channels.a.subscriptions]]\nevents = ["invoice.*"]\n'
    events = [s["events"] for s in tomllib.loads(new)["channels"]["a"]["subscriptions"]]
    assert events == [["job.created"], ["job.updated"], ["invoice.*"]]
    removed, changes = editing.unsubscribe(new, "a", "job.created")
    assert [c.index for c in changes] == [0]
    assert removed == new.replace('[[channels.a.subscriptions]]\nevents = ["job.created"]\n\n', "")


def test_headers_with_spaces_inside_the_brackets_are_left_as_written() -> None:
    # tomlkit itself would render the subscriptions header as [[ channels.a .subscriptions]].
    text = ('[hirehop]\nexport_key = "k"\n\n[ channels.a ]   # spaced\ntype = "console"\n\n'
            '  [[ channels.a.subscriptions ]]\n  events = [ "x", "y" ]\n\n# tail\n[ delivery ]\n'
            'max_attempts = 2\n')
    new = subscribe(text, "a", "z")
    at = after(text, '  events = [ "x", "y" ]\n')
    assert new == text[:at] + '\n  [[channels.a.subscriptions]]\n  events = ["z"]\n' + text[at:]
    assert editing.unsubscribe(new, "a", "z") == (text, [Unsubscribed(1, None, None)])
    assert editing.unsubscribe(text, "a", "x")[0] == text.replace('[ "x", "y" ]', '[ "y" ]')


def test_a_subscription_with_a_when_sub_table_is_kept_whole() -> None:
    text = ('[hirehop]\nexport_key = "k"\n[channels."a"]\ntype = "console"\n\n'
            '[[channels.a.subscriptions]]\nevents = ["x"]\n[channels.a.subscriptions.when]\n'
            '"data.X" = 1\n# under when\n\n# next\n[delivery]\nmax_attempts = 2\n')
    new = subscribe(text, "a", "y")
    at = after(text, "# under when\n")
    assert new == text[:at] + '\n[[channels.a.subscriptions]]\nevents = ["y"]\n' + text[at:]
    assert tomllib.loads(new)["channels"]["a"]["subscriptions"][0]["when"] == {"data.X": 1}
    assert editing.unsubscribe(new, "a", "y") == (text, [Unsubscribed(1, None, None)])
    removed, _ = editing.unsubscribe(text, "a", "x")
    assert removed == text.replace('\n[[channels.a.subscriptions]]\nevents = ["x"]\n'
                                   '[channels.a.subscriptions.when]\n"data.X" = 1\n# under when\n', "")


def test_subscribe_to_the_shipped_example_keeps_its_comment_block_after_the_new_table() -> None:
    text = SHIPPED.read_text()
    new = subscribe(text, "log", "job.status.updated", when={"changes.STATUS.to": "Booked"})
    at = after(text, '  events = ["*"]                        # glob patterns: "job.*", '
                     '"invoice.status.updated"\n')
    assert new == text[:at] + ('\n  [[channels.log.subscriptions]]\n  events = ["job.status.updated"]\n'
                               '  when = { "changes.STATUS.to" = "Booked" }\n') + text[at:]


def test_windows_line_endings_are_kept() -> None:
    crlf = CONFIG.replace("\n", "\r\n")
    new = subscribe(crlf, "team", "invoice.*")
    assert "\n" not in new.replace("\r\n", "")
    assert editing.unsubscribe(new, "team", "invoice.*")[0] == crlf


def test_subscribe_to_an_unknown_channel_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        subscribe(CONFIG, "nope", "job.created")
    assert caught.value.key == "channels.nope"
    assert "team, ops, quiet" in caught.value.message


def test_an_identical_subscription_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        subscribe(CONFIG, "team", "job.status.updated", when={"changes.STATUS.to": "Booked"}, name="booked")
    assert caught.value.key == "channels.team.subscriptions[1]"
    assert "identical" in caught.value.message
    with pytest.raises(ConfigError, match="already exists"):
        subscribe(CONFIG, "team", "job.created", "job.status.updated")
    with pytest.raises(ConfigError, match="named 'booked' already exists"):
        subscribe(CONFIG, "team", "job.updated", name="booked")
    # The same conditions without the name are a different subscription.
    added = subscribe(CONFIG, "team", "job.status.updated", when={"changes.STATUS.to": "Booked"})
    assert len(tomllib.loads(added)["channels"]["team"]["subscriptions"]) == 3


@pytest.mark.parametrize("text", [
    '[hirehop]\nexport_key = "k"\n[channels]\nx = { type = "console" }\n',
    '[hirehop]\nexport_key = "k"\n[channels.x]\ntype = "console"\nsubscriptions = [{ events = ["a"] }]\n',
])
def test_layouts_that_cannot_be_edited_safely_are_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        subscribe(text, "x", "job.created")
    assert caught.value.key == "channels.x"
    assert "by hand" in caught.value.message


# --- unsubscribe ---------------------------------------------------------------------------


def test_unsubscribe_removes_single_event_subscriptions_and_narrows_the_others() -> None:
    new, changed = editing.unsubscribe(CONFIG, "team", "job.status.updated")
    assert changed == [Unsubscribed(0, None, ("job.created",)), Unsubscribed(1, "booked", None)]
    assert new == CONFIG.replace(BOOKED_SUB, "").replace(
        '[ "job.created", "job.status.updated" ]  # keep', '[ "job.created" ]  # keep')


def test_unsubscribe_the_last_subscription_leaves_the_channel_with_none() -> None:
    once, _ = editing.unsubscribe(CONFIG, "team", "job.created")
    assert 'events = [ "job.status.updated" ]  # keep this comment' in once
    twice, changed = editing.unsubscribe(once, "team", "job.status.updated")
    assert len(changed) == 2
    assert "channels.team.subscriptions" not in twice
    assert "subscriptions" not in tomllib.loads(twice)["channels"]["team"]
    assert twice.startswith(CONFIG[:CONFIG.index("    [[channels.team")])
    assert twice.endswith(CONFIG[CONFIG.index("# a comment introducing ops"):])


def test_unsubscribe_from_an_array_over_several_lines_keeps_its_comments() -> None:
    text = ('[hirehop]\nexport_key = "k"\n[channels.x]\ntype = "console"\n\n'
            '[[channels.x.subscriptions]]\nevents = [\n  "job.created",   # one\n'
            '  "job.updated",   # two\n  "invoice.*",\n]\nname = "many"\n# after\n')
    new, changed = editing.unsubscribe(text, "x", "job.updated")
    assert changed == [Unsubscribed(0, "many", ("job.created", "invoice.*"))]
    assert tomllib.loads(new)["channels"]["x"]["subscriptions"][0]["events"] == ["job.created", "invoice.*"]
    assert '"job.created",   # one\n' in new
    assert "# two" not in new
    assert new.endswith(']\nname = "many"\n# after\n')


@pytest.mark.parametrize(("before", "event", "after_"), [
    ('events = ["a", "b"]', "a", 'events = ["b"]'),
    ('events = ["a","b"]', "b", 'events = ["a"]'),
    ('events = [ "a", "b" ]', "a", 'events = [ "b" ]'),
    ('events = [ "a", "b", ]', "b", 'events = [ "a", ]'),
    ("events = ['a', 'b', 'c']", "b", "events = ['a', 'c']"),
    ('events = ["a", "b", "a"]', "a", 'events = ["b"]'),
    ('events = ["a,b", "c"]', "c", 'events = ["a,b"]'),
    ('events = [ "a,b" ,  "c" , "d" ]', "c", 'events = [ "a,b" ,  "d" ]'),
])
def test_a_pattern_leaves_a_one_line_array_spaced_as_it_was(before: str, event: str, after_: str) -> None:
    text = f'[channels.x]\ntype = "console"\n[[channels.x.subscriptions]]\n{before}   # note\n'
    assert editing.unsubscribe(text, "x", event)[0] == text.replace(before, after_)


def test_unsubscribe_what_is_not_subscribed_is_an_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("no subscription to job.created")) as caught:
        editing.unsubscribe(CONFIG, "ops", "job.created")
    assert caught.value.key == "channels.ops"
    with pytest.raises(ConfigError, match=re.escape("no subscription to job.*")):
        editing.unsubscribe(CONFIG, "team", "job.*")  # a pattern is matched as written
    with pytest.raises(ConfigError, match=re.escape("no subscription named 'x' (named: booked)")):
        editing.unsubscribe(CONFIG, "team", "job.created", name="x")
    with pytest.raises(ConfigError, match=re.escape("named 'booked' has no event 'job.created'")):
        editing.unsubscribe(CONFIG, "team", "job.created", name="booked")
    with pytest.raises(ConfigError) as caught:
        editing.unsubscribe(CONFIG, "nope", "job.created")
    assert caught.value.key == "channels.nope"


@pytest.mark.parametrize("channel", ["team", "ops", "quiet"])
def test_subscribe_then_unsubscribe_gives_back_the_original_bytes(channel: str) -> None:
    new = subscribe(CONFIG, channel, "contact.created", when={"data.ID": {"gt": 3}})
    assert new != CONFIG
    back, changed = editing.unsubscribe(new, channel, "contact.created")
    assert (back, len(changed)) == (CONFIG, 1)


def test_round_trip_on_the_shipped_example() -> None:
    text = SHIPPED.read_text()
    new = subscribe(text, "log", "job.status.updated", unless={"user_email": "robot@example.com"})
    back, changed = editing.unsubscribe(new, "log", "job.status.updated")
    assert (back, len(changed)) == (text, 1)


# --- command-line values ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("data.DEPOT=2", ("data.DEPOT", 2)),
    ("data.TOTAL=2.5", ("data.TOTAL", 2.5)),
    ("data.VIP=true", ("data.VIP", True)),
    ('data.NAME="2"', ("data.NAME", "2")),
    ('changes.STATUS.to=["Booked", "Dispatched"]', ("changes.STATUS.to", ["Booked", "Dispatched"])),
    ("data.TOTAL={ gt = 3 }", ("data.TOTAL", {"gt": 3})),
    ("changes.STATUS.to=Booked", ("changes.STATUS.to", "Booked")),
    ("user_name=Sam Taylor", ("user_name", "Sam Taylor")),
    (" data.X = 2 ", ("data.X", 2)),
    ("data.OUT=2026-06-10", ("data.OUT", "2026-06-10")),
    ("data.X=a=b", ("data.X", "a=b")),
    ("data.X=1\ny = 2", ("data.X", "1\ny = 2")),
    ("data.X=nan", ("data.X", "nan")),
    ("data.X=", ("data.X", "")),
])
def test_parse_assignment_types_values_as_toml_would(text: str, expected: tuple[str, Any]) -> None:
    path, value = editing.parse_assignment(text)
    assert (path, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["data.X", "=2", "  =x"])
def test_parse_assignment_needs_a_path_and_an_equals_sign(text: str) -> None:
    with pytest.raises(ConfigError, match="PATH=VALUE"):
        editing.parse_assignment(text)


def test_a_path_given_twice_is_an_error() -> None:
    assert editing.assignments(["a=1", "b=x"], "--when") == {"a": 1, "b": "x"}
    with pytest.raises(ConfigError, match="--when a is given twice"):
        editing.assignments(["a=1", "a=2"], "--when")


# --- validation and the atomic write ---------------------------------------------------------


@pytest.mark.parametrize(("when", "key", "message"), [
    ({"changes.STATUS.to": "Bookd"}, "channels.team.subscriptions[2].when.changes.STATUS.to",
     "not a known status label"),
    ({"data.TOTAL": {"greater": 3}}, "channels.team.subscriptions[2].when.data.TOTAL",
     "unknown operator 'greater'"),
    ({"data.NAME": {"matches": "("}}, "channels.team.subscriptions[2].when.data.NAME.matches",
     "invalid regular expression"),
])
def test_an_invalid_edit_is_refused_and_the_file_left_byte_identical(
        tmp_path: Path, when: dict[str, Any], key: str, message: str) -> None:
    path = write(tmp_path)
    new = subscribe(CONFIG, "team", "job.updated", when=when)
    with pytest.raises(ConfigError) as caught:
        config_file.write_validated(path, new)
    assert (caught.value.where, caught.value.key) == (str(path), key)
    assert message in caught.value.message
    assert path.read_bytes() == CONFIG.encode()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_bad_event_pattern_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError, match="not an event name or glob pattern"):
        config_file.write_validated(path, subscribe(CONFIG, "ops", "job status"))
    assert path.read_bytes() == CONFIG.encode()


def test_the_prepared_status_label_of_this_file_is_known(tmp_path: Path) -> None:
    # job_status = { 3 = "Prepared" } in [hirehop]: validation uses the file's own labels.
    path = write(tmp_path)
    config = config_file.write_validated(path, subscribe(CONFIG, "ops", "job.status.updated",
                                                     when={"changes.STATUS.to": "Prepared"}))
    assert config.channels["ops"].subscriptions[0].when[0].value == "Prepared"


def test_write_validated_replaces_the_file_atomically_keeping_its_permissions(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.chmod(0o640)
    inode = path.stat().st_ino
    new = subscribe(CONFIG, "ops", "job.status.updated", when={"changes.STATUS.to": "Dispatched"})
    config = config_file.write_validated(path, new)
    assert path.read_bytes() == new.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert "ops" in [s.channel for s in config.index.match(status_event(5))]
    assert "ops" not in [s.channel for s in config.index.match(status_event(2))]
    assert config.channels["ops"].subscriptions[0].when[0].describe() == "changes.STATUS.to eq 'Dispatched'"


def test_write_through_a_symlink_updates_the_file_it_points_to(tmp_path: Path) -> None:
    real = write(tmp_path)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    new = subscribe(CONFIG, "ops", "job.created")
    config_file.write_validated(link, new)
    assert link.is_symlink()
    assert real.read_bytes() == new.encode()


SECRETS_CONFIG = """\
[hirehop]
export_key = "${EDIT_TEST_KEY}"

[channels.slack]
type = "slack"
token = "${EDIT_TEST_SLACK_TOKEN}"
channel = "${EDIT_TEST_SLACK_CHANNEL}"

[channels.tg]
type = "telegram"
token = "${EDIT_TEST_TG_TOKEN}"
chat_id = "${EDIT_TEST_TG_CHAT}"

[channels.mail]
type = "email"
host = "${EDIT_TEST_SMTP_HOST}"
username = "${EDIT_TEST_SMTP_USER}"
password = "${EDIT_TEST_SMTP_PASSWORD}"
from = "${EDIT_TEST_FROM}"
to = ["${EDIT_TEST_TO}", "second@example.com"]
"""


def test_editing_does_not_need_the_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("EDIT_TEST_")]:
        monkeypatch.delenv(name)
    path = write(tmp_path, SECRETS_CONFIG)
    with pytest.raises(ConfigError, match="EDIT_TEST_KEY is not set"):
        load(path)
    new = subscribe(SECRETS_CONFIG, "tg", "job.created")
    config_file.write_validated(path, new)
    assert path.read_text() == new
    # Variables that are set are used as they are, so a bad value is still caught.
    with pytest.raises(ConfigError) as caught:
        config_file.validate(path, new, {"EDIT_TEST_TG_CHAT": "not a chat"})
    assert caught.value.key == "channels.tg.chat_id"


def test_a_failing_extra_check_leaves_the_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path)

    def refuse(config: Any) -> None:
        raise ConfigError("template 'nope' not found")

    with pytest.raises(ConfigError) as caught:
        config_file.write_validated(path, subscribe(CONFIG, "ops", "job.created"), verify=refuse)
    assert caught.value.where == str(path)
    assert path.read_bytes() == CONFIG.encode()


def test_subscription_rows_say_who_hears_what_in_words(tmp_path: Path) -> None:
    text = subscribe(CONFIG, "ops", "job.*", when={"changes.STATUS.to": ["Booked", 5], "data.DEPOT": 2},
                     unless={"user_email": "robot@example.com", "data.VIP": {"exists": True}},
                     template="default")
    config = config_file.validate(write(tmp_path, text), text, ENV)
    assert subscription_rows(config, "ops") == [[
        "ops", "console", "", "job.*", "changes.STATUS.to in Booked, 5 and data.DEPOT = 2",
        "user_email = robot@example.com or data.VIP exists", "default"]]
    assert [row[:4] for row in subscription_rows(config, None)] == [
        ["team", "console", "", "job.created, job.status.updated"],
        ["team", "console", "booked", "job.status.updated"],
        ["ops", "console", "", "job.*"],
    ]
    assert subscription_rows(config, "quiet") == []
    with pytest.raises(ConfigError) as caught:
        subscription_rows(config, "nope")
    assert caught.value.key == "channels.nope"


# --- the commands ------------------------------------------------------------------------------


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIREHOP_EXPORT_KEY", raising=False)
    monkeypatch.delenv("NOTIFYBOT_DATABASE", raising=False)


@pytest.mark.usefixtures("no_secrets")
def test_cli_subscribe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    code = run("subscribe", "team", "job.status.updated", "--when", "changes.STATUS.to=Dispatched",
               "--unless", "user_email=robot@example.com", "-c", str(path))
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "channels.team: subscribed to job.status.updated when changes.STATUS.to = Dispatched "
        "unless user_email = robot@example.com",
        "a running notifybot serve picks this up on its next reload",
    ]
    at = after(CONFIG, TEAM_LAST)
    assert path.read_text() == CONFIG[:at] + (
        '\n    [[channels.team.subscriptions]]\n    events = ["job.status.updated"]\n'
        '    when = { "changes.STATUS.to" = "Dispatched" }\n'
        '    unless = { user_email = "robot@example.com" }\n') + CONFIG[at:]
    config = load(path, ENV)
    assert [s.id for s in config.index.match(status_event(5))][-1] == \
        config.channels["team"].subscriptions[-1].id
    assert config.channels["team"].subscriptions[-1] not in config.index.match(status_event(2))


@pytest.mark.usefixtures("no_secrets")
def test_cli_subscribe_with_name_and_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert run("subscribe", "quiet", "job.*", "invoice.*", "--name", "all jobs", "--template", "default",
               "-c", str(path)) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        "channels.quiet: subscribed to job.*, invoice.* with template default (name all jobs)"
    sub = load(path, ENV).channels["quiet"].subscriptions[0]
    assert (sub.id, sub.events, sub.template) == ("all jobs", ("job.*", "invoice.*"), "default")


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize(("argv", "error"), [
    (["subscribe", "team", "job.updated", "--when", "changes.STATUS.to=Bookd"],
     "channels.team.subscriptions[2].when.changes.STATUS.to: 'Bookd' is not a known status label"),
    (["subscribe", "nope", "job.updated"], "channels.nope: no such channel (configured: team, ops, quiet)"),
    (["subscribe", "team", "job.updated", "--when", "data.X"], "expected PATH=VALUE"),
    (["subscribe", "team", "job.updated", "--template", "nosuch"], "template 'nosuch' not found"),
    (["subscribe", "team", "job.status.updated", "--name", "booked",
      "--when", "changes.STATUS.to=Booked"], "identical subscription already exists"),
    (["unsubscribe", "ops", "job.updated"], "channels.ops: no subscription to job.updated"),
    (["unsubscribe", "team", "job.status.updated", "--name", "nope"], "no subscription named 'nope'"),
    (["unsubscribe", "team"], "name the EVENT to drop, or --name NAME"),
    (["subscribe", "team", "job.["], "'job.[': '[' is never closed with ']', so it could never match"),
    (["subscribe", "team", "job.updated", "--when", "data.DEPOT={ gt = 3"],
     "--when data.DEPOT={ gt = 3: not a valid TOML value"),
    (["unsubscribe", "nope", "job.updated"], "channels.nope: no such channel"),
])
def test_cli_refusals_exit_1_and_leave_the_file_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], error: str) -> None:
    path = write(tmp_path)
    assert run(*argv, "-c", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert error in captured.err
    assert path.read_bytes() == CONFIG.encode()


@pytest.mark.usefixtures("no_secrets")
def test_cli_unsubscribe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert run("unsubscribe", "team", "job.status.updated", "--dry-run", "-c", str(path)) == 0
    assert capsys.readouterr().out.splitlines() == [
        "channels.team.subscriptions[0]: events become job.created",
        "channels.team.subscriptions[1] (booked): removed",
        "dry run: nothing written",
    ]
    assert path.read_bytes() == CONFIG.encode()
    assert run("unsubscribe", "team", "job.status.updated", "--yes", "-c", str(path)) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "channels.team: 2 subscriptions changed",
        "a running notifybot serve picks this up on its next reload",
    ]
    assert path.read_text() == CONFIG.replace(BOOKED_SUB, "").replace(
        '[ "job.created", "job.status.updated" ]', '[ "job.created" ]')
    assert load(path, ENV).index.match(status_event(2)) == []


@pytest.mark.usefixtures("no_secrets")
def test_cli_unsubscribe_asks_before_changing_several(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # not a terminal: --yes is needed
    assert run("unsubscribe", "team", "job.status.updated", "-c", str(path)) == 1
    captured = capsys.readouterr()
    assert "2 subscriptions would change; add --yes to change them all, or --name" in captured.err
    assert "(booked): removed" in captured.out
    assert path.read_bytes() == CONFIG.encode()

    assert run("unsubscribe", "team", "--name", "booked", "-c", str(path)) == 0  # one: no question
    assert capsys.readouterr().out.splitlines()[0] == "channels.team.subscriptions[1] (booked): removed"
    assert path.read_text() == CONFIG.replace(BOOKED_SUB, "")


@pytest.mark.usefixtures("no_secrets")
def test_cli_subscribe_then_unsubscribe_restores_the_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert run("subscribe", "ops", "invoice.status.updated", "--when", 'changes.STATUS.to=["Paid"]',
               "-c", str(path)) == 0
    assert path.read_bytes() != CONFIG.encode()
    assert run("unsubscribe", "ops", "invoice.status.updated", "-c", str(path)) == 0
    assert path.read_bytes() == CONFIG.encode()


@pytest.mark.usefixtures("no_secrets")
def test_cli_subscriptions_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert run("subscriptions", "-c", str(path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CHANNEL", "KIND", "NAME", "EVENTS", "WHEN", "UNLESS", "TEMPLATE"]
    assert lines[1].split() == ["team", "console", "job.created,", "job.status.updated"]
    assert lines[2].split() == ["team", "console", "booked", "job.status.updated",
                                "changes.STATUS.to", "=", "Booked"]
    assert lines[3:] == ["channel 'ops' has no subscriptions and hears nothing",
                         "channel 'quiet' has no subscriptions and hears nothing"]
    # The columns line up under their headers.
    assert lines[2].index("changes.STATUS.to") == lines[0].index("WHEN")


@pytest.mark.usefixtures("no_secrets")
def test_cli_subscriptions_of_one_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert run("subscriptions", "quiet", "-c", str(path)) == 0
    assert capsys.readouterr().out.splitlines() == [
        "no subscriptions", "channel 'quiet' has no subscriptions and hears nothing"]
    assert run("subscriptions", "team", "-c", str(path)) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["CHANNEL", "team", "team"]
    assert run("subscriptions", "nope", "-c", str(path)) == 1
    assert "channels.nope: no such channel" in capsys.readouterr().err

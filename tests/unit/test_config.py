"""subscriptions.toml: loading, ${ENV} substitution, validation, and secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifybot.config import Config, load
from notifybot.errors import ConfigError
from notifybot.events import parse_event
from notifybot.secret import Secret

SHIPPED = Path(__file__).resolve().parents[2] / "subscriptions.toml"
KEY = "hh-export-key-VERY-SECRET"
ENV = {"HIREHOP_EXPORT_KEY": KEY, "SLACK_BOT_TOKEN": "xoxb-SECRET-TOKEN",
       "SMTP_PASSWORD": "smtp-SECRET-PASSWORD", "DB_PASSWORD": "db-SECRET-PASSWORD"}
SECRETS = list(ENV.values())
HEAD = '[hirehop]\nexport_key = "${HIREHOP_EXPORT_KEY}"\n'


def write(tmp_path: Path, text: str, name: str = "subscriptions.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load(write(tmp_path, text), ENV if environ is None else environ)


def error_for(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, ENV if environ is None else environ)
    return caught.value


def test_shipped_example_loads_with_the_export_key_set() -> None:
    config = load(SHIPPED, {"HIREHOP_EXPORT_KEY": KEY})
    assert config.hirehop.export_keys[0].secret.reveal() == KEY
    assert list(config.channels) == ["log"]
    assert config.channels["log"].type == "console"
    assert [s.channel for s in config.index.match(parse_event({"event": "job.created"}))] == ["log"]


def test_shipped_example_needs_the_export_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load(SHIPPED, {})
    assert caught.value.key == "hirehop.export_key"
    assert "HIREHOP_EXPORT_KEY" in str(caught.value)


def test_defaults_when_only_the_key_is_given(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD)
    assert config.server.bind == "127.0.0.1:8080"
    assert config.server.webhook_path == "/hirehop"
    assert config.server.timezone.key == "Europe/London"
    assert config.hirehop.base_url == "https://myhirehop.com"
    assert config.delivery.max_attempts == 12
    assert dict(config.channels) == {}


def test_missing_env_var_names_the_key(tmp_path: Path) -> None:
    text = HEAD + '[channels.a]\ntype = "slack"\ntoken = "${NOT_SET}"\nchannel = "#a"\n'
    error = error_for(tmp_path, text)
    assert error.key == "channels.a.token"
    assert "NOT_SET" in error.message
    assert error.where == str(tmp_path / "subscriptions.toml")


def test_env_vars_substitute_inside_strings(tmp_path: Path) -> None:
    text = HEAD + '[server]\nwebhook_path = "/hooks/${HOOK}"\n'
    config = load_text(tmp_path, text, {**ENV, "HOOK": "abc"})
    assert config.server.webhook_path == "/hooks/abc"


def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, HEAD + "[server\nbind = 1\n")
    assert error.where == str(tmp_path / "subscriptions.toml")
    assert "not valid TOML" in error.message
    assert "line 3" in error.message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as caught:
        load(tmp_path / "nope.toml", ENV)
    assert caught.value.where == str(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (HEAD + "[servr]\n", "servr"),
        (HEAD + '[server]\nbnd = "x"\n', "server.bnd"),
        ('[hirehop]\nexport_key = "k"\nbase_ur = "https://x"\n', "hirehop.base_ur"),
        (HEAD + "[delivery]\nmax_attempt = 3\n", "delivery.max_attempt"),
        (HEAD + '[channels.a]\ntype = "console"\ncolour = "red"\n', "channels.a.colour"),
        (HEAD + '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\n'
         'events = ["*"]\nwhn = { user_email = "x" }\n', "channels.a.subscriptions[0].whn"),
    ],
)
def test_unknown_keys_and_sections_are_named(tmp_path: Path, text: str, key: str) -> None:
    error = error_for(tmp_path, text)
    assert error.key == key
    assert "unknown key" in error.message


@pytest.mark.parametrize("text", ["", "[server]\n", "[hirehop]\n"])
def test_no_export_key_refuses(tmp_path: Path, text: str) -> None:
    error = error_for(tmp_path, text)
    assert error.key == "hirehop.export_key"
    assert "no export_key" in error.message


@pytest.mark.parametrize(
    "value", ['""', "[]", '[""]', "42", "true"],
)
def test_empty_or_odd_export_key_refuses(tmp_path: Path, value: str) -> None:
    error = error_for(tmp_path, f"[hirehop]\nexport_key = {value}\n")
    assert error.key == "hirehop.export_key"


def test_export_key_list_accepts_each(tmp_path: Path) -> None:
    config = load_text(tmp_path, '[hirehop]\nexport_key = ["first", "${HIREHOP_EXPORT_KEY}"]\n')
    keys = config.hirehop.export_keys
    assert [k.secret.reveal() for k in keys] == ["first", KEY]
    assert all(isinstance(k.secret, Secret) and k.company_id is None for k in keys)


def test_export_key_company_table_scopes_each_key(tmp_path: Path) -> None:
    text = '[hirehop]\nexport_key = { 42 = "${HIREHOP_EXPORT_KEY}", 43 = "other-key" }\n'
    config = load_text(tmp_path, text)
    scoped = {k.company_id: k.secret.reveal() for k in config.hirehop.export_keys}
    assert scoped == {42: KEY, 43: "other-key"}


def test_export_key_company_table_needs_numeric_ids(tmp_path: Path) -> None:
    error = error_for(tmp_path, '[hirehop]\nexport_key = { acme = "k" }\n')
    assert error.key == "hirehop.export_key.acme"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "../etc/passwd", "/etc/localtime"])
def test_bad_timezone_names_the_key(tmp_path: Path, zone: str) -> None:
    error = error_for(tmp_path, HEAD + f'[server]\ntimezone = "{zone}"\n')
    assert error.key == "server.timezone"


def test_good_timezone_is_used(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + '[server]\ntimezone = "America/New_York"\n')
    assert config.server.timezone.key == "America/New_York"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (HEAD + '[server]\nbind = "8080"\n', "server.bind"),
        (HEAD + '[server]\nwebhook_path = "hirehop"\n', "server.webhook_path"),
        (HEAD + '[server]\ndatabase = "mysql://x"\n', "server.database"),
        (HEAD + "[server]\nmax_body_bytes = 0\n", "server.max_body_bytes"),
        ('[hirehop]\nexport_key = "k"\nbase_url = "myhirehop.com"\n', "hirehop.base_url"),
        ('[hirehop]\nexport_key = "k"\njob_status = { x = "Prepared" }\n', "hirehop.job_status.x"),
        ('[hirehop]\nexport_key = "k"\njob_status = { 3 = "" }\n', "hirehop.job_status.3"),
        ('[hirehop]\nexport_key = "k"\ninvoice_status = "Paid"\n', "hirehop.invoice_status"),
        (HEAD + "[delivery]\nmax_attempts = 0\n", "delivery.max_attempts"),
        (HEAD + "[delivery]\nbackoff_max = true\n", "delivery.backoff_max"),
        ("server = 1\n" + HEAD, "server"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert error_for(tmp_path, text).key == key


@pytest.mark.parametrize("kind", ['"pager"', '"Slack"', "3"])
def test_unknown_channel_type_names_the_key(tmp_path: Path, kind: str) -> None:
    error = error_for(tmp_path, HEAD + f"[channels.a]\ntype = {kind}\n")
    assert error.key == "channels.a.type"
    assert "console, slack, telegram, email" in error.message


def test_channel_without_type_names_the_key(tmp_path: Path) -> None:
    assert error_for(tmp_path, HEAD + "[channels.a]\n").key == "channels.a.type"


@pytest.mark.parametrize("events", ["", "events = []\n", "events = [1]\n", 'events = ["job created"]\n'])
def test_subscription_without_usable_events_names_the_key(tmp_path: Path, events: str) -> None:
    text = HEAD + '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\n' + events
    assert error_for(tmp_path, text).key == "channels.a.subscriptions[0].events"


def test_single_event_string_is_accepted(tmp_path: Path) -> None:
    text = HEAD + '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\nevents = "job.*"\n'
    assert load_text(tmp_path, text).channels["a"].subscriptions[0].events == ("job.*",)


def test_duplicate_subscriptions_are_refused(tmp_path: Path) -> None:
    text = HEAD + '[channels.a]\ntype = "console"\n' + (
        '[[channels.a.subscriptions]]\nevents = ["job.*"]\n' * 2)
    error = error_for(tmp_path, text)
    assert error.key == "channels.a.subscriptions[1]"
    assert "name" in error.message


def test_named_twins_are_distinct(tmp_path: Path) -> None:
    text = HEAD + '[channels.a]\ntype = "console"\n' + "".join(
        f'[[channels.a.subscriptions]]\nname = "{n}"\nevents = ["job.*"]\n' for n in ("x", "y"))
    assert [s.id for s in load_text(tmp_path, text).channels["a"].subscriptions] == ["x", "y"]


def test_same_subscription_on_two_channels_is_fine(tmp_path: Path) -> None:
    text = HEAD + "".join(
        f'[channels.{c}]\ntype = "console"\n[[channels.{c}.subscriptions]]\nevents = ["*"]\n'
        for c in ("a", "b"))
    config = load_text(tmp_path, text)
    assert [s.channel for s in config.index.match(parse_event({"event": "x"}))] == ["a", "b"]


def test_subscription_ids_survive_reordering(tmp_path: Path) -> None:
    one = '[[channels.a.subscriptions]]\nevents = ["job.*"]\n'
    two = '[[channels.a.subscriptions]]\nevents = ["invoice.*"]\nwhen = { "data.X" = 1 }\n'
    first = load_text(tmp_path, HEAD + '[channels.a]\ntype = "console"\n' + one + two)
    second = load_text(tmp_path, HEAD + '[channels.a]\ntype = "console"\n' + two + one)
    ids = [s.id for s in first.channels["a"].subscriptions]
    assert [s.id for s in second.channels["a"].subscriptions] == ids[::-1]


@pytest.mark.parametrize(
    ("condition", "key"),
    [
        ('when = { "data.X" = { like = 1 } }', "channels.a.subscriptions[0].when.data.X"),
        ('unless = { "changes.STATUS.to" = "Boked" }',
         "channels.a.subscriptions[0].unless.changes.STATUS.to"),
        ('when = "x"', "channels.a.subscriptions[0].when"),
    ],
)
def test_condition_errors_name_file_and_key(tmp_path: Path, condition: str, key: str) -> None:
    text = (HEAD + '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\n'
            f'events = ["job.*"]\n{condition}\n')
    error = error_for(tmp_path, text)
    assert error.key is not None and error.key.startswith(key)
    assert error.where == str(tmp_path / "subscriptions.toml")
    assert str(error).startswith(str(tmp_path / "subscriptions.toml"))


def test_conditions_use_the_configured_labels(tmp_path: Path) -> None:
    text = ('[hirehop]\nexport_key = "k"\njob_status = { 3 = "Prepared" }\n'
            '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\n'
            'events = ["job.*"]\nwhen = { "changes.STATUS.to" = "Prepared" }\n')
    config = load_text(tmp_path, text)
    prepared = parse_event({"event": "job.status.updated", "changes": {"STATUS": {"to": "3"}}})
    assert config.index.match(prepared)
    assert config.hirehop.labels.job.label(3) == "Prepared"


def test_condition_on_a_field_named_like_a_secret_still_matches(tmp_path: Path) -> None:
    text = (HEAD + '[channels.a]\ntype = "console"\n[[channels.a.subscriptions]]\n'
            'events = ["*"]\nwhen = { "data.username" = "sam" }\n')
    config = load_text(tmp_path, text)
    assert config.index.match(parse_event({"event": "x", "data": {"username": "sam"}}))


FULL = """
[server]
database = "postgresql://notifybot:${DB_PASSWORD}@db.internal/notifybot"
[hirehop]
export_key = "${HIREHOP_EXPORT_KEY}"
[channels.accounts]
type = "slack"
token = "${SLACK_BOT_TOKEN}"
channel = "#accounts"
[channels.oncall]
type = "email"
host = "smtp.example.com"
username = "notifybot"
password = "${SMTP_PASSWORD}"
from = "notifybot@example.com"
to = ["oncall@example.com"]
"""


def test_secrets_never_appear_in_repr_of_config(tmp_path: Path) -> None:
    text = repr(load_text(tmp_path, FULL))
    for secret in SECRETS:
        assert secret not in text


def test_secret_options_are_secret_objects(tmp_path: Path) -> None:
    config = load_text(tmp_path, FULL)
    assert isinstance(config.channels["accounts"].options["token"], Secret)
    assert config.channels["oncall"].options["password"].reveal() == ENV["SMTP_PASSWORD"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('[server]\n', '[server]\nbind = 1\n'),
        ('channel = "#accounts"', 'channel = "not a channel"'),
        ('host = "smtp.example.com"', 'host = "smtp.example.com"\nport = "x"'),
        ('channel = "#accounts"', 'channel = "#accounts"\nnope = 1'),
        ("[hirehop]\n", "[hirehop]\nbase_url = \"${DB_PASSWORD}\"\n"),
    ],
)
def test_secrets_never_appear_in_config_errors(tmp_path: Path, old: str, new: str) -> None:
    error = error_for(tmp_path, FULL.replace(old, new, 1))
    for secret in SECRETS:
        assert secret not in str(error)
        assert secret not in repr(error)


def test_notifybot_database_overrides_the_file(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD, {**ENV, "NOTIFYBOT_DATABASE": "sqlite:///other.db"})
    assert config.server.database == "sqlite:///other.db"


def test_templates_folder_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + '[server]\ntemplates = "mine"\n')
    assert config.server.templates == tmp_path / "mine"


def test_status_label_overrides_are_loaded(tmp_path: Path) -> None:
    text = ('[hirehop]\nexport_key = "k"\njob_status = { 3 = "Prepared" }\n'
            'invoice_status = { "3" = "Settled" }\n')
    labels = load_text(tmp_path, text).hirehop.labels
    assert (labels.job.label(3), labels.job.label(2), labels.invoice.label(3)) == (
        "Prepared", "Booked", "Settled")

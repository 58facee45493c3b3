"""``notifybot send-test``: a fire drill to each kind of channel, run in this process against the
stand-ins (a process would add nothing but start-up time), and what a failure tells the operator."""

from __future__ import annotations

import pytest

from notifybot import cli
from tests.integration.conftest import SMTP_PASSWORD, SMTP_USER, StandIns
from tests.integration.service import free_port


@pytest.fixture
def secrets(standins: StandIns, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIREHOP_EXPORT_KEY", raising=False)  # send-test does not need it
    for name, value in (("SLACK_BOT_TOKEN", standins.slack.token),
                        ("TELEGRAM_BOT_TOKEN", standins.telegram.token),
                        ("SMTP_USER", SMTP_USER), ("SMTP_PASSWORD", SMTP_PASSWORD)):
        monkeypatch.setenv(name, value)


async def send_test(*argv: str) -> int:
    # cli.run starts its own event loop; the stand-ins keep serving on this one meanwhile.
    import asyncio
    return await asyncio.to_thread(cli.run, ["send-test", *argv])


@pytest.mark.usefixtures("secrets")
async def test_send_test_fires_one_message_per_channel(
        standins: StandIns, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(standins.config())
    for channel in ("team", "warehouse", "oncall", "log"):
        assert await send_test(channel, "-c", config) == 0, capsys.readouterr()
        assert f"{channel}: sent (" in capsys.readouterr().out
    assert standins.slack.messages[0].text == "notifybot test message for channel team"
    assert standins.telegram.messages[0].plain_text.startswith(
        "notifybot test message for channel warehouse")
    assert standins.smtp.messages[0].message["Subject"] == "notifybot test message for channel oncall"


@pytest.mark.usefixtures("secrets")
async def test_a_failure_says_what_to_fix(
        standins: StandIns, capsys: pytest.CaptureFixture[str]) -> None:
    config = standins.config()
    standins.slack.token = "xoxb-rotated"
    assert await send_test("team", "-c", str(config)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "team: FAILED: slack: invalid_auth"
    assert "the token was refused: check channels.team.token" in out[1]

    assert await send_test("nope", "-c", str(config)) == 1
    assert "no channel 'nope' (configured: log, team, warehouse, oncall)" in capsys.readouterr().err


@pytest.mark.usefixtures("secrets")
async def test_an_smtp_failure_names_host_and_port(
        standins: StandIns, capsys: pytest.CaptureFixture[str]) -> None:
    config = standins.config()
    closed = free_port()
    config.write_text(config.read_text().replace(f"port = {standins.smtp.port}", f"port = {closed}"))
    assert await send_test("oncall", "-c", str(config)) == 1
    out = capsys.readouterr().out
    assert "oncall: FAILED: smtp: cannot connect" in out
    assert f"at 127.0.0.1:{closed}: check channels.oncall.host and port" in out
    assert SMTP_PASSWORD not in out


async def test_only_the_channel_tested_needs_its_secrets(
        standins: StandIns, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HIREHOP_EXPORT_KEY", "SLACK_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "SMTP_USER",
                 "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    config = str(standins.config())
    assert await send_test("log", "-c", config) == 0
    assert "log: sent (" in capsys.readouterr().out
    monkeypatch.setenv("SMTP_USER", SMTP_USER)
    assert await send_test("oncall", "-c", config) == 1
    err = capsys.readouterr().err
    assert "environment variable not set: SMTP_PASSWORD (used by channels.oncall.password)" in err

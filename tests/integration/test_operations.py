"""Running notifybot day to day, as an operator would: logs and reloads of a running process,
metrics (in this process: the endpoint is the app's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import SAMPLES, SMTP_PASSWORD, StandIns
from tests.integration.service import EXPORT_KEY
from tests.polling import eventually


async def test_json_logs_have_stable_fields_and_no_secrets_and_sigterm_stops_cleanly(
    standins: StandIns,
) -> None:
    service = await standins.service(standins.config(), "--log-format", "json").start()
    try:
        body = (SAMPLES / "job.status.updated.constructed.json").read_bytes()
        assert (await service.post(body)).status_code == 202
        await eventually(lambda: standins.telegram.messages, what="the Telegram delivery")
        await eventually(lambda: service.stderr.count('"delivered to') >= 3, what="delivery logs")
    finally:
        assert await service.terminate() == 0, "SIGTERM: a clean exit"
    assert "Traceback" not in service.stderr
    lines = [json.loads(line) for line in service.stderr.splitlines() if line.strip()]
    accepted = [e for e in lines if e["message"] == "accepted job.status.updated"]
    assert accepted and accepted[0]["event_id"] == 1 and accepted[0]["event"] == "job.status.updated"
    delivered = [e for e in lines if e["message"].startswith("delivered to")]
    assert {e["channel"] for e in delivered} == {"log", "team", "warehouse"}
    assert all({"delivery_id", "attempt", "event_id"} <= e.keys() for e in delivered)
    for secret in (EXPORT_KEY, standins.slack.token, standins.telegram.token, SMTP_PASSWORD):
        assert secret not in service.stderr


async def test_a_broken_edit_keeps_the_last_good_config_and_a_fix_is_picked_up(
    standins: StandIns,
) -> None:
    config = standins.config()
    service = await standins.service(config).start()
    good = config.read_text()
    try:
        config.write_text(good.replace('events = ["job.*"]', 'events = ["job.*"]\n  when = { bad = '))
        service.signal(signal.SIGHUP)
        await eventually(lambda: "refused, still running the last good configuration" in service.stderr,
                         what="the refusal in the log")
        assert str(config) in service.stderr, "the error names the file"
        body = (SAMPLES / "job.updated.constructed.json").read_bytes()
        assert (await service.post(body)).status_code == 202
        await eventually(lambda: standins.slack.messages, what="delivery on the last good config")

        fixed = good.replace('[[channels.team.subscriptions]]\n  events = ["job.*"]',
                             '[[channels.team.subscriptions]]\n  events = ["invoice.*"]')
        config.write_text(fixed)
        stamp = config.stat().st_mtime + 5
        os.utime(config, (stamp, stamp))  # the watcher compares mtimes
        await eventually(lambda: "reloaded (file changed)" in service.stderr, what="the reload")
        invoice = (SAMPLES / "invoice.status.updated.constructed.json").read_bytes()
        await service.post(invoice)
        await eventually(lambda: len(standins.slack.messages) == 2, what="the invoice on Slack")
        assert standins.slack.messages[1].text.startswith("Invoice OT-INV-12245")
    finally:
        await service.terminate()


async def test_metrics_are_served_in_prometheus_text(standins: StandIns) -> None:
    service = await standins.app(standins.config()).start()
    try:
        await service.post((SAMPLES / "job.updated.constructed.json").read_bytes())
        await eventually(lambda: standins.slack.messages, what="the Slack delivery")
        response = await service.get("/metrics")
        text = (await response.get_data()).decode()
    finally:
        await service.terminate()
    assert response.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"notifybot_events_received", "notifybot_deliveries", "notifybot_queue_depth",
            "notifybot_delivery_latency_seconds", "notifybot_oldest_pending_age_seconds"} <= names


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text('[hirehop]\nexport_key = "k"\n[channels.log]\ntype = "console"\n')
    # `notifybot subscriptions | head -c 0`: the reader is gone before the first write.
    process = subprocess.Popen([sys.executable, "-m", "notifybot", "subscriptions", "-c", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=30) == 141
    assert stderr == b""

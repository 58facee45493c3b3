"""Headers every notification email carries, whatever the payload."""

from __future__ import annotations

from notifybot.channels.email import compose

PAYLOAD = {"subject": "Job 1: Provisional → Booked", "text": "Job 1\n", "html": "<p>Job 1</p>"}


def test_every_email_says_it_is_auto_generated() -> None:
    # RFC 3834 §5: auto-responders (out-of-office replies) must not answer it.
    message = compose(PAYLOAD, "notifybot <bot@example.com>", ["oncall@example.com"])
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_all("Auto-Submitted") == ["auto-generated"]

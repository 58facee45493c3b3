"""Secrets: masked in every rendering, and masked in text without mangling other words."""

from __future__ import annotations

from notifybot.secret import MASK, Secret, redact


def test_redact_masks_whole_words_only() -> None:
    user, password = Secret("smtp"), Secret("hunter2!")
    reason = "smtp 535: authentication failed for smtp with hunter2! (smtpd said smtp)"
    assert redact(reason, [user, password]) == \
        f"{MASK} 535: authentication failed for {MASK} with {MASK} (smtpd said {MASK})"
    assert redact("smtp: cannot connect (ECONNREFUSED)", [Secret("smt"), None]) == \
        "smtp: cannot connect (ECONNREFUSED)"


def test_a_secret_never_prints() -> None:
    secret = Secret("xoxb-123")
    assert "xoxb" not in f"{secret} {secret!r}"

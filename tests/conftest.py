"""Suite-wide fixtures: a clean environment for real clients talking to loopback stand-ins."""

from __future__ import annotations

import pytest

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack-sdk reads HTTP(S)_PROXY and ignores NO_PROXY, so a CI proxy would swallow
    # loopback traffic to the stand-ins; python-telegram-bot warns unless PTB_TIMEDELTA is set.
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PTB_TIMEDELTA", "1")

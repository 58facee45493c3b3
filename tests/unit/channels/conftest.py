"""Fixtures shared by the channel tests."""

from __future__ import annotations

import pytest

from tests.standins.smtp import Certificate, make_certificate


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """One self-signed certificate for every SMTP test of the session."""
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))

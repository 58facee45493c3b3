"""Turning an HTTP request body into an accepted webhook, or a clear refusal.

HireHop sends JSON, whatever the Content-Type says; some senders post a form
whose one field holds the JSON (or whose fields are the envelope). The
``export_key`` inside the body is HireHop's only proof of origin: it is compared
in constant time against every configured key, and redacted before storage.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .config import ExportKey
from .errors import WebhookRejected
from .events import to_int

REDACTED = "[redacted]"
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_JSON_KEY = re.compile(rb'("export_key"\s*:\s*)"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Webhook:
    """A decoded, authenticated webhook, ready to store."""

    payload: Mapping[str, Any]
    body: bytes  # as received, with the export key redacted
    digest: str  # of the body as received: identical bodies are one event


def accept(body: bytes, content_type: str, keys: tuple[ExportKey, ...]) -> Webhook:
    """Decode and authenticate a body; raise WebhookRejected (400 or 403) otherwise."""
    payload = decode(body, content_type)
    key = payload.get("export_key")
    if not isinstance(key, str) or not key:
        raise WebhookRejected(403, "missing export_key")
    if not key_accepted(key, to_int(payload.get("company_id")), keys):
        raise WebhookRejected(403, "wrong export_key")
    return Webhook(payload, redact(body, key), hashlib.sha256(body).hexdigest())


def decode(body: bytes, content_type: str = "") -> dict[str, Any]:
    """The webhook as a dict: JSON first, whatever the Content-Type, then a form."""
    if not body.strip():
        raise WebhookRejected(400, "empty body; expected a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8 text") from None
    value = _json(text)
    if value is None:
        value = _form(text)
    if value is None:
        raise WebhookRejected(400, "body is neither a JSON object nor a form holding one")
    return value


def key_accepted(candidate: str, company_id: int | None, keys: tuple[ExportKey, ...]) -> bool:
    """Constant-time check against every key (no early exit reveals which one matched)."""
    results = [
        key.secret.matches(candidate) and (key.company_id is None or key.company_id == company_id)
        for key in keys
    ]
    return any(results)


def redact(body: bytes, key: str) -> bytes:
    """The body with the export key's value replaced, so no stored row holds it."""
    redacted = _JSON_KEY.sub(rb'\1"' + REDACTED.encode() + rb'"', body)
    if redacted != body:
        return redacted  # JSON: the bytes as received, but for the key's value
    as_json = _json(body.decode("utf-8-sig"))
    if as_json is not None:  # JSON spelling "export_key" with escapes: re-encoded whole
        return json.dumps({**as_json, "export_key": REDACTED}, ensure_ascii=False).encode()
    # A form: percent-encoding has many spellings, so rebuild it from its fields
    # with the key replaced (a JSON-holding field re-encoded the same way).
    fields = parse_qsl(body.decode("utf-8-sig"), keep_blank_values=True)
    cleaned = [(name, REDACTED if name == "export_key" else _redact_json(value))
               for name, value in fields]
    return urlencode(cleaned).encode()


def _redact_json(value: str) -> str:
    decoded = _json(value)
    if decoded is None or "export_key" not in decoded:
        return value
    return json.dumps({**decoded, "export_key": REDACTED}, ensure_ascii=False)


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers worth keeping, minus credentials."""
    return {k: v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _form(text: str) -> dict[str, Any] | None:
    try:
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    if not fields:
        return None
    for _, value in fields:  # one field holding the whole envelope as JSON
        decoded = _json(value)
        if decoded is not None and ("event" in decoded or "export_key" in decoded):
            return decoded
    names = {name for name, _ in fields}
    if not names & {"event", "export_key"}:
        return None
    # The envelope's own fields, each nested value (data, changes) JSON-encoded.
    return {name: _json(value) or value for name, value in fields}

"""Turning an HTTP request body into an accepted webhook, or a clear refusal.

HireHop sends JSON, whatever the Content-Type says; some senders post a form
whose one field holds the JSON (or whose fields are the envelope). The
``export_key`` inside the body is HireHop's only proof of origin: it is compared
in constant time against every configured key, and redacted before storage.

Text is made safe here, once, for everything downstream: a lone surrogate
(``"\\udc80"``) becomes U+FFFD and NUL is removed, so that no database and no
channel can choke on it. The body is parsed once (orjson, which also refuses
over-deep nesting); what is stored is the decoded webhook re-encoded, with the
export key replaced wherever it appears, so no spelling of the key survives.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .config import ExportKey
from .errors import WebhookRejected
from .events import safe_text, to_int

REDACTED = "[redacted]"
MAX_DEPTH = 254  # nesting levels a webhook may have (HireHop's have four or five)
_BOM = b"\xef\xbb\xbf"
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# A JSON escape, left to right, so that an escaped backslash is consumed whole
# (``\\ud800`` is a backslash and text, not a surrogate). A high+low pair is text.
_ESCAPE = re.compile(
    rb"(?P<pair>\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?P<lone>\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
    rb"|(?P<nul>\\u0000)"
    rb"|\\.", re.DOTALL)
_UNSAFE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


@dataclass(frozen=True)
class Webhook:
    """A decoded, authenticated webhook, ready to store."""

    payload: Mapping[str, Any]
    body: bytes  # the webhook re-encoded as JSON, safe text, the export key redacted
    digest: str  # of the body as received: identical bodies are one event


def accept(body: bytes, content_type: str, keys: tuple[ExportKey, ...]) -> Webhook:
    """Decode and authenticate a body; raise WebhookRejected (400 or 403) otherwise."""
    payload = decode(body, content_type)
    key = payload.get("export_key")
    if not isinstance(key, str) or not key:
        raise WebhookRejected(403, "missing export_key")
    if not key_accepted(key, to_int(payload.get("company_id")), keys):
        raise WebhookRejected(403, "wrong export_key")
    return Webhook(payload, stored_body(payload, key), hashlib.sha256(body).hexdigest())


def decode(body: bytes, content_type: str = "") -> dict[str, Any]:
    """The webhook as a dict with safe text: JSON first, whatever the Content-Type, then a form."""
    body = body.removeprefix(_BOM)
    if not body.strip():
        raise WebhookRejected(400, "empty body; expected a JSON object")
    value = _json(body)
    if value is None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected(400, "body is not UTF-8 text") from None
        value = _form(text)
    if value is None:
        raise WebhookRejected(
            400, "body is neither a JSON object nor a form holding one")
    return value


def key_accepted(candidate: str, company_id: int | None, keys: tuple[ExportKey, ...]) -> bool:
    """Constant-time check against every key (no early exit reveals which one matched)."""
    results = [
        key.secret.matches(candidate) and (key.company_id is None or key.company_id == company_id)
        for key in keys
    ]
    return any(results)


def redact(body: bytes, key: str) -> bytes:
    """The body as it is stored: decoded, re-encoded, the export key replaced wherever it is."""
    return stored_body(decode(body), key)


def stored_body(payload: Mapping[str, Any], key: str) -> bytes:
    """``payload`` as JSON without ``key`` anywhere; WebhookRejected if that cannot be done.

    Re-encoding gives every string one spelling, so a key hidden behind escapes
    (``"export\\u005fkey"``), percent-encoding or a decoy field is found by one
    byte search. The result is checked, not trusted.
    """
    body = _encode({**payload, "export_key": REDACTED})
    spelled = _encode(key)[1:-1]
    if spelled in body:  # the key elsewhere too: in a note, a field name...
        body = body.replace(spelled, REDACTED.encode())
        if _json(body) is None:  # it stood outside a string (a key of digits)
            raise WebhookRejected(400, "the export_key appears in the body where it "
                                       "cannot be redacted; nothing was stored")
    if spelled in body or key.encode() in body:  # e.g. a key inside "[redacted]"
        raise WebhookRejected(400, "the export_key could not be redacted from the body; "
                                   "nothing was stored")
    return body


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers worth keeping, minus credentials, as safe text."""
    return {safe_text(k): safe_text(v) for k, v in headers.items()
            if k.lower() not in _DROPPED_HEADERS}


def _encode(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "ecursion" in str(exc):  # orjson writes at most 255 levels: deeper is no webhook
            raise _too_deep() from None
    # an integer past 64 bits, which orjson does not write (the stdlib reads and writes it)
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except RecursionError:
        raise _too_deep() from None


def _json(data: bytes) -> dict[str, Any] | None:
    """A JSON object with safe text, or None. One orjson parse on the common path."""
    value: Any
    try:
        value = orjson.loads(data)
        if b"\\u0000" in data:  # orjson keeps NUL; made safe below
            raise orjson.JSONDecodeError("NUL", "", 0)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # orjson stops at 1,024 levels, before any recursion
            raise _too_deep() from None
        data = _safe_escapes(data)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = _stdlib_json(data)
    return value if isinstance(value, dict) else None


def _too_deep() -> WebhookRejected:
    return WebhookRejected(400, f"body is nested deeper than {MAX_DEPTH} levels")


def _stdlib_json(data: bytes) -> Any:
    # For what orjson refuses but JSON allows: numbers past 64 bits (compared as
    # text by conditions). Depth was refused by orjson already if it was the cause.
    try:
        return json.loads(data.decode("utf-8"))  # not bytes: json would guess UTF-16
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _safe_escapes(data: bytes) -> bytes:
    """JSON text with lone-surrogate escapes turned to U+FFFD and NUL escapes removed."""
    if not _UNSAFE_ESCAPE.search(data):
        return data

    def fix(match: re.Match[bytes]) -> bytes:
        if match.group("lone"):
            return rb"\ufffd"
        return b"" if match.group("nul") else match.group(0)

    return _ESCAPE.sub(fix, data)


def _form(text: str) -> dict[str, Any] | None:
    try:
        fields = [(safe_text(name), safe_text(value))
                  for name, value in parse_qsl(text, keep_blank_values=True,
                                               strict_parsing=True)]
    except ValueError:
        return None
    if not fields:
        return None
    for _, value in fields:  # one field holding the whole envelope as JSON
        decoded = _json(value.encode())
        if decoded is not None and ("event" in decoded or "export_key" in decoded):
            return decoded
    names = {name for name, _ in fields}
    if not names & {"event", "export_key"}:
        return None
    # The envelope's own fields, each nested value (data, changes) JSON-encoded.
    return {name: _json(value.encode()) or value for name, value in fields}

"""Accepting a webhook body: tolerant decoding, export_key checks, redaction before storage."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import pytest

from notifybot.config import ExportKey
from notifybot.errors import WebhookRejected
from notifybot.ingest import REDACTED, accept, decode, key_accepted, redact, safe_headers
from notifybot.secret import Secret

KEY = "EXAMPLEKEY123"
KEYS = (ExportKey(Secret(KEY)),)
ENVELOPE = {
    "time": "2026-05-12 13:04:17", "user_name": "Sam Taylor", "company_id": 42,
    "export_key": KEY, "event": "job.status.updated", "job": 15471,
    "data": {"JOB_NAME": "Summer Tour 2026 ► Glasgow backline", "COMPANY": "Bean & Leaf <Cafés>"},
    "changes": {"STATUS": {"from": "1", "to": "2"}},
}
JSON_BODY = json.dumps(ENVELOPE, ensure_ascii=False).encode()


def flat_form(envelope: dict[str, object]) -> bytes:
    fields = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else str(v)
              for k, v in envelope.items()}
    return urlencode(fields).encode()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "",
     "multipart/form-data; boundary=x"],
)
def test_json_is_read_whatever_the_content_type(content_type: str) -> None:
    assert decode(JSON_BODY, content_type) == ENVELOPE


def test_json_with_a_byte_order_mark_is_read() -> None:
    assert decode(b"\xef\xbb\xbf" + JSON_BODY) == ENVELOPE


def test_json_with_escaped_unicode_is_read() -> None:
    assert decode(json.dumps(ENVELOPE).encode()) == ENVELOPE


@pytest.mark.parametrize("field", ["payload", "data", "json", "webhook"])
def test_form_field_holding_json_is_read(field: str) -> None:
    body = urlencode({field: json.dumps(ENVELOPE)}).encode()
    assert decode(body, "application/x-www-form-urlencoded") == ENVELOPE


def test_flat_form_envelope_is_read_with_nested_json() -> None:
    payload = decode(flat_form(ENVELOPE), "application/x-www-form-urlencoded")
    assert payload["event"] == "job.status.updated"
    assert payload["export_key"] == KEY
    assert payload["data"] == ENVELOPE["data"]
    assert payload["changes"] == ENVELOPE["changes"]
    assert payload["job"] == "15471"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"  \n\t ", "empty body"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        ('{"event": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
        (b"[1, 2, 3]", "neither"),
        (b'[{"event": "job.created", "export_key": "EXAMPLEKEY123"}]', "neither"),
        (b'"just a string"', "neither"),
        (b"null", "neither"),
        (b"42", "neither"),
        (b"garbage", "neither"),
        (b"{not json", "neither"),
        (b"a=1&b=2", "neither"),
        (b"payload=%5B1%2C2%5D", "neither"),
    ],
)
def test_bodies_that_are_not_a_webhook_are_400(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        decode(body, "application/json")
    assert caught.value.status == 400
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ({k: v for k, v in ENVELOPE.items() if k != "export_key"}, "missing export_key"),
        ({**ENVELOPE, "export_key": ""}, "missing export_key"),
        ({**ENVELOPE, "export_key": None}, "missing export_key"),
        ({**ENVELOPE, "export_key": "WRONGKEY123"}, "wrong export_key"),
        ({**ENVELOPE, "export_key": KEY.lower()}, "wrong export_key"),
        ({**ENVELOPE, "export_key": KEY + " "}, "wrong export_key"),
        ({**ENVELOPE, "export_key": KEY[:-1]}, "wrong export_key"),
    ],
)
def test_missing_or_wrong_key_is_403(envelope: dict[str, object], reason: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        accept(json.dumps(envelope).encode(), "application/json", KEYS)
    assert caught.value.status == 403
    assert caught.value.reason == reason
    assert KEY not in str(caught.value)


def test_right_key_is_accepted_with_payload_and_digest() -> None:
    webhook = accept(JSON_BODY, "application/json", KEYS)
    assert webhook.payload == ENVELOPE
    assert webhook.digest == hashlib.sha256(JSON_BODY).hexdigest()


def test_identical_bodies_share_a_digest_and_different_ones_do_not() -> None:
    other = json.dumps({**ENVELOPE, "job": 15472}).encode()
    first = accept(JSON_BODY, "", KEYS).digest
    assert accept(JSON_BODY, "", KEYS).digest == first
    assert accept(other, "", KEYS).digest != first


def test_any_of_several_keys_is_accepted() -> None:
    keys = (ExportKey(Secret("first")), ExportKey(Secret(KEY)))
    assert accept(JSON_BODY, "", keys).payload["event"] == "job.status.updated"


@pytest.mark.parametrize(
    ("company_id", "accepted"),
    [(42, True), ("42", True), (42.0, True), (43, False), (None, False), ("", False)],
)
def test_company_scoped_key_only_for_its_company(company_id: object, accepted: bool) -> None:
    keys = (ExportKey(Secret(KEY), company_id=42), ExportKey(Secret("other"), company_id=43))
    body = json.dumps({**ENVELOPE, "company_id": company_id}).encode()
    if accepted:
        assert accept(body, "", keys).payload["company_id"] == company_id
    else:
        with pytest.raises(WebhookRejected) as caught:
            accept(body, "", keys)
        assert caught.value.status == 403


@pytest.mark.parametrize(
    ("candidate", "company", "expected"),
    [(KEY, 42, True), (KEY, 7, True), ("other", 43, True), ("other", 42, False), ("x", 42, False)],
)
def test_key_accepted_mixes_global_and_scoped_keys(candidate: str, company: int,
                                                   expected: bool) -> None:
    keys = (ExportKey(Secret(KEY)), ExportKey(Secret("other"), company_id=43))
    assert key_accepted(candidate, company, keys) is expected


def test_stored_json_body_has_no_key() -> None:
    webhook = accept(JSON_BODY, "application/json", KEYS)
    assert KEY.encode() not in webhook.body
    assert json.loads(webhook.body) == {**ENVELOPE, "export_key": REDACTED}


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"job.created","export_key" : "EXAMPLEKEY123","data":{}}',
        b'{\n  "export_key":\n    "EXAMPLEKEY123"\n}',
        b'{"export_key": "\\u0045XAMPLEKEY123"}',
    ],
)
def test_redact_json_spellings(body: bytes) -> None:
    redacted = redact(body, KEY)
    assert json.loads(redacted)["export_key"] == REDACTED
    assert b"EXAMPLEKEY123" not in redacted and b"XAMPLEKEY123" not in redacted


@pytest.mark.parametrize("key", [KEY, "K+y/z=1&2", "22u43mrjwe7u"])
def test_redact_form_holding_json(key: str) -> None:
    body = urlencode({"payload": json.dumps({**ENVELOPE, "export_key": key})}).encode()
    redacted = redact(body, key)
    assert key.encode() not in redacted
    assert decode(redacted)["export_key"] == REDACTED
    assert decode(redacted)["data"] == ENVELOPE["data"]


@pytest.mark.parametrize("key", [KEY, "K+y/z=1&2", "ключ-ünïcode"])
def test_redact_flat_form(key: str) -> None:
    body = flat_form({**ENVELOPE, "export_key": key})
    redacted = redact(body, key)
    assert decode(redacted)["export_key"] == REDACTED
    assert decode(redacted)["event"] == "job.status.updated"


def test_accept_redacts_form_bodies() -> None:
    body = urlencode({"payload": json.dumps(ENVELOPE)}).encode()
    webhook = accept(body, "application/x-www-form-urlencoded", KEYS)
    assert KEY.encode() not in webhook.body
    assert decode(webhook.body)["export_key"] == REDACTED


def test_safe_headers_drop_credentials() -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x",
               "Cookie": "s=1", "Proxy-Authorization": "Basic y", "User-Agent": "HireHop"}
    assert safe_headers(headers) == {"Content-Type": "application/json", "User-Agent": "HireHop"}


@pytest.mark.parametrize("encoded", ["Ab%2fCd%2bEf%3d%3d", "Ab%2FCd%2BEf%3D%3D", "Ab/Cd+Ef=="])
def test_a_form_key_is_redacted_however_it_is_percent_encoded(encoded: str) -> None:
    key = "Ab/Cd+Ef==" if "%" in encoded else "Ab/Cd Ef=="  # a raw "+" is a space in a form
    body = f"export_key={encoded}&event=job.updated".encode()
    stored = redact(body, key)
    assert decode(stored) == {"export_key": "[redacted]", "event": "job.updated"}
    assert b"Cd" not in stored


def test_a_json_key_name_spelled_with_escapes_is_still_redacted() -> None:
    body = b'{"export\\u005fkey": "s3cret-key", "event": "job.updated"}'
    stored = redact(body, "s3cret-key")
    assert b"s3cret" not in stored
    assert decode(stored) == {"export_key": "[redacted]", "event": "job.updated"}


# Hostile input (issue 13): every body gets an answer, text is made safe once, the key never stays.

def _envelope_bytes(**fields: object) -> bytes:
    return json.dumps({**ENVELOPE, **fields}).encode()  # ensure_ascii: "\udc80" stays an escape


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("event", "job.\udc80", "job.\ufffd"),
    ("user_name", "Sam \ud800Taylor", "Sam \ufffdTaylor"),
    ("event", "pg.nul\x00x", "pg.nulx"),
    ("user_name", "\udc80\ud800", "\ufffd\ufffd"),
])
def test_lone_surrogates_become_replacement_characters_and_nul_goes(
        field: str, value: str, expected: str) -> None:
    webhook = accept(_envelope_bytes(**{field: value}), "application/json", KEYS)
    assert webhook.payload[field] == expected
    stored = decode(webhook.body)
    assert stored[field] == expected
    stored_text = webhook.body.decode("utf-8")  # valid UTF-8: no database can refuse it
    assert "\\ud8" not in stored_text.lower() and "\\udc" not in stored_text.lower()
    assert "\\u0000" not in stored_text and "\x00" not in stored_text


def test_a_surrogate_pair_and_an_escaped_backslash_are_left_alone() -> None:
    body = b'{"event": "job.updated", "a": "\\ud83d\\ude00", "b": "\\\\ud800"}'
    payload = decode(body)
    assert payload["a"] == "\U0001F600"
    assert payload["b"] == "\\ud800", "a backslash, then text"


def test_a_form_with_nul_and_surrogate_escapes_is_made_safe() -> None:
    body = urlencode({"payload": json.dumps({**ENVELOPE, "user_name": "A\udc80\x00B"})}).encode()
    assert decode(body)["user_name"] == "A\ufffdB"
    assert decode(b"export_key=k&event=job.%00x")["event"] == "job.x"


@pytest.mark.parametrize("depth", [300, 1000, 5000, 100_000])
def test_deep_nesting_is_a_400_not_a_crash(depth: int) -> None:
    body = (b'{"export_key": "EXAMPLEKEY123", "event": "job.updated", "data": '
            + b"[" * depth + b"]" * depth + b"}")
    with pytest.raises(WebhookRejected) as caught:
        accept(body, "application/json", KEYS)
    assert caught.value.status == 400
    assert "nested" in caught.value.reason


def test_nesting_a_webhook_may_really_have_is_accepted() -> None:
    body = json.dumps({**ENVELOPE, "data": {"a": {"b": {"c": [[[{"d": 1}]]]}}}}).encode()
    assert accept(body, "application/json", KEYS).payload["data"]["a"]["b"]["c"] == [[[{"d": 1}]]]


def test_a_huge_integer_is_still_read_as_json() -> None:
    body = b'{"event": "job.updated", "export_key": "EXAMPLEKEY123", "n": ' + b"9" * 400 + b"}"
    webhook = accept(body, "application/json", KEYS)
    assert webhook.payload["n"] == int("9" * 400)
    assert decode(webhook.body)["n"] == int("9" * 400)


@pytest.mark.parametrize("key", ["\ud800", "\udc80abc", "EXAMPLEKEY123\ud800", "ключ"])
def test_a_key_holding_odd_text_is_a_403(key: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        accept(json.dumps({**ENVELOPE, "export_key": key}).encode(), "application/json", KEYS)
    assert caught.value.status == 403


def test_a_decoy_key_in_data_does_not_save_an_escaped_key_name_from_redaction() -> None:
    body = (b'{"export\\u005fkey": "EXAMPLEKEY123", "event": "job.updated", '
            b'"data": {"export_key": "decoy"}}')
    webhook = accept(body, "application/json", KEYS)
    assert b"EXAMPLEKEY123" not in webhook.body
    assert decode(webhook.body)["export_key"] == REDACTED


def test_a_quoted_decoy_in_a_form_does_not_save_the_key_from_redaction() -> None:
    envelope = json.dumps({**ENVELOPE, "data": {"NOTE": 'x "export_key": "decoy" y'}})
    body = f'note="export_key":"decoy"&payload={envelope}'.encode()
    webhook = accept(body, "application/x-www-form-urlencoded", KEYS)
    assert b"EXAMPLEKEY123" not in webhook.body
    assert b"EXAMPLEKEY" not in webhook.body


def test_the_key_is_redacted_wherever_it_appears() -> None:
    body = json.dumps({**ENVELOPE, "data": {"NOTE": "the key is EXAMPLEKEY123, keep it",
                                            "EXAMPLEKEY123": 1}}).encode()
    webhook = accept(body, "application/json", KEYS)
    assert b"EXAMPLEKEY123" not in webhook.body
    assert decode(webhook.body)["data"]["NOTE"] == f"the key is {REDACTED}, keep it"


def test_a_body_whose_key_cannot_be_redacted_is_refused() -> None:
    keys = (ExportKey(Secret("1234567")),)
    body = json.dumps({**ENVELOPE, "export_key": "1234567", "job": 12345678}).encode()
    with pytest.raises(WebhookRejected) as caught:
        accept(body, "application/json", keys)
    assert caught.value.status == 400
    assert "1234567" not in caught.value.reason

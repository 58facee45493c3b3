"""``notifybot silence add | list | expire``: parsing, output, and the store round trip."""

from __future__ import annotations

import getpass

from notifybot.cli import parser
from notifybot.silence_commands import as_json, os_user, silence_add, silence_expire, silence_list
from notifybot.silences import Silence

NOW = 1_800_000_000.0


def test_silence_commands_parse_as_documented() -> None:
    args = parser().parse_args(["silence", "add", "*", "--when", "job=15471", "--when",
                                "changes.STATUS.to=Booked", "--unless", "user_email=bot@x",
                                "--for", "2h", "--comment", "re-keying", "-c", "x.toml"])
    assert (args.run, args.channel, args.when, args.unless, args.duration, args.comment) == (
        silence_add, "*", ["job=15471", "changes.STATUS.to=Booked"], ["user_email=bot@x"], "2h",
        "re-keying")
    assert str(args.config) == "x.toml"
    listing = parser().parse_args(["silence", "list", "--json"])
    assert (listing.run, listing.json, listing.all) == (silence_list, True, False)
    expire = parser().parse_args(["silence", "expire", "7"])
    assert (expire.run, expire.silence_id) == (silence_expire, 7)


def test_list_json_names_every_field() -> None:
    silence = Silence(3, "ops", {"job": 15471}, {}, "re-keying", "sam", NOW, NOW + 7200)
    assert as_json(silence, "job eq 15471", NOW + 7200) == {
        "id": 3, "channel": "ops", "when": {"job": 15471}, "unless": {},
        "conditions": "job eq 15471", "comment": "re-keying", "created_by": "sam",
        "starts_at": NOW, "expires_at": NOW + 7200, "state": "expired"}


def test_the_os_user_makes_the_silence() -> None:
    assert os_user() == getpass.getuser()

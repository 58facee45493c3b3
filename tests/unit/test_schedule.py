"""Active hours and digest windows: wall-clock rules, midnight wraps, day lists and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from notifybot.config import ActiveHours
from notifybot.matching import Digest
from notifybot.schedule import describe_hours, digest_window, instant, is_open, next_opening

LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # daylight saving moves the clock by 30 minutes
WEEKDAYS = frozenset(range(5))
OFFICE = ActiveHours(time(8), time(18), WEEKDAYS)
NIGHTS_FROM_FRIDAY = ActiveHours(time(22), time(6), frozenset({4}))
WEEKEND = ActiveHours(time(0), time(0), frozenset({5, 6}))  # days alone: whole days


def local(text: str, tz: ZoneInfo = LONDON) -> float:
    """Epoch seconds of a local wall time (first occurrence)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def shown(epoch: float | None, tz: ZoneInfo = LONDON) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz).strftime("%a %Y-%m-%d %H:%M")


# 2026-11-30 is a Monday; 2026-12-04 a Friday.
@pytest.mark.parametrize(("hours", "now", "opens"), [
    (OFFICE, "2026-11-30 09:00", None),
    (OFFICE, "2026-11-30 07:59", "Mon 2026-11-30 08:00"),
    (OFFICE, "2026-11-30 18:00", "Tue 2026-12-01 08:00"),        # the closing minute is closed
    (OFFICE, "2026-11-30 17:59", None),
    (OFFICE, "2026-12-04 19:00", "Mon 2026-12-07 08:00"),        # the weekend is skipped
    (OFFICE, "2026-12-05 12:00", "Mon 2026-12-07 08:00"),
    (NIGHTS_FROM_FRIDAY, "2026-12-04 23:00", None),              # Friday night
    (NIGHTS_FROM_FRIDAY, "2026-12-05 05:59", None),              # ...into Saturday morning
    (NIGHTS_FROM_FRIDAY, "2026-12-05 06:00", "Fri 2026-12-11 22:00"),
    (NIGHTS_FROM_FRIDAY, "2026-12-03 23:00", "Fri 2026-12-04 22:00"),  # Thursday night is not Friday's
    (NIGHTS_FROM_FRIDAY, "2026-12-04 02:00", "Fri 2026-12-04 22:00"),  # nor is Friday's small hours
    (ActiveHours(time(22), time(6)), "2026-12-01 12:00", "Tue 2026-12-01 22:00"),
    (ActiveHours(time(22), time(6)), "2026-12-01 02:00", None),
    (WEEKEND, "2026-12-04 23:59", "Sat 2026-12-05 00:00"),
    (WEEKEND, "2026-12-06 23:59", None),
    (WEEKEND, "2026-12-07 00:00", "Sat 2026-12-12 00:00"),
])
def test_next_opening_in_local_time(hours: ActiveHours, now: str, opens: str | None) -> None:
    assert shown(next_opening(hours, LONDON, local(now))) == opens
    assert is_open(hours, LONDON, local(now)) == (opens is None)


def test_the_first_opening_after_spring_forward_is_in_summer_time() -> None:
    # Clocks go forward on Sunday 29 March 2026; Monday opens at 08:00 BST, 07:00 UTC.
    assert next_opening(OFFICE, LONDON, local("2026-03-27 19:00")) == utc("2026-03-30 07:00")


def test_a_window_opening_in_the_skipped_hour_opens_at_the_change() -> None:
    # 01:30 does not exist on 29 March 2026 in London: the clock jumps from 01:00 GMT to 02:00 BST.
    hours = ActiveHours(time(1, 30), time(3))
    assert next_opening(hours, LONDON, utc("2026-03-29 00:59")) == utc("2026-03-29 01:00")
    assert is_open(hours, LONDON, utc("2026-03-29 01:00"))  # 02:00 BST
    assert not is_open(hours, LONDON, utc("2026-03-29 02:00"))  # 03:00 BST


def test_a_window_in_the_repeated_hour_opens_at_its_first_occurrence() -> None:
    # 25 October 2026: 01:00-02:00 happens twice (BST, then GMT).
    hours = ActiveHours(time(1, 30), time(2, 30))
    assert next_opening(hours, LONDON, utc("2026-10-25 00:00")) == utc("2026-10-25 00:30")
    assert is_open(hours, LONDON, utc("2026-10-25 01:15"))  # 01:15 GMT, the second pass
    assert next_opening(hours, LONDON, utc("2026-10-25 02:30")) == utc("2026-10-26 01:30")


@pytest.mark.parametrize("tz", [LONDON, LORD_HOWE, ZoneInfo("America/New_York")])
@pytest.mark.parametrize("hours", [OFFICE, NIGHTS_FROM_FRIDAY, WEEKEND,
                                   ActiveHours(time(1, 45), time(2, 15)),
                                   ActiveHours(time(23, 30), time(0, 30), frozenset({0, 3}))])
def test_next_opening_is_the_first_open_instant_all_year(tz: ZoneInfo, hours: ActiveHours) -> None:
    now = utc("2026-01-01 00:00")
    while now < utc("2027-01-01 00:00"):
        opens = next_opening(hours, tz, now)
        if opens is not None:
            assert opens > now
            assert is_open(hours, tz, opens) and not is_open(hours, tz, opens - 1)
        now += 7 * 3600 + 13 * 60  # lands at every time of day over the year


def test_instant_resolves_wall_times_that_do_not_exist_or_repeat() -> None:
    assert instant(datetime(2026, 3, 29).date(), time(1, 30), LONDON) == utc("2026-03-29 01:00")
    assert instant(datetime(2026, 10, 25).date(), time(1, 30), LONDON) == utc("2026-10-25 00:30")
    assert instant(datetime(2026, 10, 4).date(), time(2, 10), LORD_HOWE) == utc("2026-10-03 15:30")


def test_hours_are_described_for_preview() -> None:
    assert describe_hours(OFFICE) == "08:00-18:00, mon, tue, wed, thu, fri"
    assert describe_hours(WEEKEND) == "all day, sat, sun"


def window(digest: Digest, now: float, tz: ZoneInfo = LONDON) -> tuple[str | None, str | None]:
    start, end = digest_window(digest, now, tz)
    assert start <= now < end
    return shown(start, tz), shown(end, tz)


@pytest.mark.parametrize(("digest", "now", "expected"), [
    (Digest(every=3600), "2026-12-01 16:45", ("Tue 2026-12-01 16:00", "Tue 2026-12-01 17:00")),
    (Digest(every=3600), "2026-12-01 17:00", ("Tue 2026-12-01 17:00", "Tue 2026-12-01 18:00")),
    (Digest(every=900), "2026-12-01 16:46", ("Tue 2026-12-01 16:45", "Tue 2026-12-01 17:00")),
    (Digest(every=86400), "2026-12-01 16:46", ("Tue 2026-12-01 00:00", "Wed 2026-12-02 00:00")),
    (Digest(every=7 * 86400), "2026-12-03 10:00", ("Mon 2026-11-30 00:00", "Mon 2026-12-07 00:00")),
    (Digest(at=(time(17, 30),)), "2026-12-01 16:30", ("Mon 2026-11-30 17:30", "Tue 2026-12-01 17:30")),
    (Digest(at=(time(17, 30),)), "2026-12-01 17:30", ("Tue 2026-12-01 17:30", "Wed 2026-12-02 17:30")),
    (Digest(at=(time(9), time(17, 30))), "2026-12-01 12:00",
     ("Tue 2026-12-01 09:00", "Tue 2026-12-01 17:30")),
    (Digest(at=(time(9), time(17, 30))), "2026-12-01 20:00",
     ("Tue 2026-12-01 17:30", "Wed 2026-12-02 09:00")),
])
def test_digest_windows_follow_the_local_clock(digest: Digest, now: str,
                                               expected: tuple[str, str]) -> None:
    assert window(digest, local(now)) == expected


def test_hourly_windows_follow_the_local_hour_in_a_half_hour_zone() -> None:
    assert window(Digest(every=3600), local("2026-12-01 16:45", KOLKATA), KOLKATA) == (
        "Tue 2026-12-01 16:00", "Tue 2026-12-01 17:00")


def test_windows_that_do_not_divide_a_day_count_from_the_epoch() -> None:
    start, end = digest_window(Digest(every=7 * 3600), local("2026-12-01 16:45"), LONDON)
    assert start % (7 * 3600) == 0 and end - start == 7 * 3600


def test_a_daily_window_lasts_23_hours_on_the_spring_forward_day() -> None:
    start, end = digest_window(Digest(every=86400), utc("2026-03-29 12:00"), LONDON)
    assert (start, end) == (utc("2026-03-29 00:00"), utc("2026-03-29 23:00"))


def test_the_repeated_hour_belongs_to_one_hourly_window() -> None:
    start, end = digest_window(Digest(every=3600), utc("2026-10-25 01:30"), LONDON)
    assert (start, end) == (utc("2026-10-25 00:00"), utc("2026-10-25 02:00"))


@pytest.mark.parametrize("tz", [LONDON, LORD_HOWE])
@pytest.mark.parametrize("digest", [Digest(every=1800), Digest(every=3600), Digest(every=86400),
                                    Digest(every=5 * 3600), Digest(at=(time(1, 30), time(17, 30)))])
def test_digest_windows_tile_time_without_gaps_or_overlaps(tz: ZoneInfo, digest: Digest) -> None:
    for month_start in ("2026-03-27 00:00", "2026-10-02 00:00", "2026-10-23 00:00"):
        now = utc(month_start)
        start, end = digest_window(digest, now, tz)
        for _ in range(120):
            assert start <= now < end
            following = digest_window(digest, end, tz)
            assert following[0] == end, shown(end, tz)
            now = end + 1
            start, end = following

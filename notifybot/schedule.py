"""When a channel is open, and which digest window a moment belongs to. Pure: times in, times out.

Everything is computed on *instants* (epoch seconds) built from wall-clock times
in the server's time zone, so daylight saving time never opens a window twice or
skips one:

* a wall time that does not exist (01:30 on a spring-forward night in London) is
  the first instant the clock shows a later time: the moment of the change;
* a wall time that happens twice (01:30 on a fall-back night) is its first
  occurrence.

Active hours (:class:`~notifybot.config.ActiveHours`) are one window per listed
day, opening at ``start``; a window that wraps midnight (``22:00-06:00``)
belongs to the day it opens, so ``days = ["fri"]`` covers Friday 22:00 to
Saturday 06:00. ``start == end`` (only ``days`` given) is the whole day.

Digest windows: ``Digest(every=...)`` cuts each local day into equal windows
from midnight when ``every`` divides a day (``"15m"``, ``"1h"``, ``"1d"``),
whole local days from a Monday when it is a number of days (``"7d"`` runs
Monday to Monday), and otherwise fixed windows from the Unix epoch. ``Digest(at=...)``
is daily: a window ends at each listed time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .config import ActiveHours
from .matching import Digest

DAY = 86400
_WEEK_ORIGIN = date(1970, 1, 5)  # a Monday: windows of whole days count from here


def instant(day: date, at: time, tz: ZoneInfo) -> float:
    """The first instant (epoch seconds) at which the clock in ``tz`` shows ``at`` or later on ``day``."""
    first = datetime.combine(day, at, tz).timestamp()  # fold=0: the first of two occurrences
    shown = datetime.fromtimestamp(first, tz)
    if shown.replace(tzinfo=None) == datetime.combine(day, at):
        return first
    # A wall time in a gap: find the change itself, between the two readings of ``at``.
    other = datetime.combine(day, at, tz).replace(fold=1).timestamp()
    low, high = math.floor(min(first, other)), math.ceil(max(first, other))
    wanted = datetime.combine(day, at)
    while low < high:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wanted:
            high = middle
        else:
            low = middle + 1
    return float(low)


def local_date(now: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(now, tz).date()


# --- active hours -----------------------------------------------------------------------------


def windows(hours: ActiveHours, tz: ZoneInfo, around: float) -> Iterator[tuple[float, float]]:
    """The open windows ``[opens, closes)`` from the day before ``around`` to eight days after."""
    first = local_date(around, tz) - timedelta(days=1)
    wraps = hours.end <= hours.start  # equal: the whole day
    for offset in range(10):
        day = first + timedelta(days=offset)
        if day.weekday() in hours.days:
            closes_on = day + timedelta(days=1) if wraps else day
            yield instant(day, hours.start, tz), instant(closes_on, hours.end, tz)


def is_open(hours: ActiveHours, tz: ZoneInfo, now: float) -> bool:
    """Whether a channel with these active hours takes messages at ``now``."""
    return any(opens <= now < closes for opens, closes in windows(hours, tz, now))


def next_opening(hours: ActiveHours, tz: ZoneInfo, now: float) -> float | None:
    """None while open; otherwise the instant the next window opens (a message waits until then)."""
    if not hours.days:
        raise ValueError("active hours with no days never open")
    if is_open(hours, tz, now):
        return None
    return min(opens for opens, _ in windows(hours, tz, now) if opens > now)


# --- digest windows ---------------------------------------------------------------------------


def digest_window(digest: Digest, now: float, tz: ZoneInfo) -> tuple[float, float]:
    """The window ``[start, end)`` holding ``now``: the digest gathering now is sent at ``end``."""
    if digest.every is not None:
        return _every_window(digest.every, now, tz)
    if not digest.at:
        raise ValueError("a digest needs every or at")
    return _daily_window(digest.at, now, tz)


def _every_window(every: float, now: float, tz: ZoneInfo) -> tuple[float, float]:
    if every <= 0:
        raise ValueError("a digest window must last some time")
    if every % DAY == 0:  # whole days, counted in local dates from a Monday
        days = int(every // DAY)
        today = local_date(now, tz)
        first = _WEEK_ORIGIN + timedelta(days=(today - _WEEK_ORIGIN).days // days * days)
        return instant(first, time(0), tz), instant(first + timedelta(days=days), time(0), tz)
    if DAY % every == 0:  # a whole number of windows per local day, on the wall clock
        return _in_day(_wall_times(every), now, tz)
    start = math.floor(now / every) * every
    return start, start + every


def _wall_times(every: float) -> list[time]:
    """``00:00``, ``00:00 + every``, ... within one day (``every`` divides a day)."""
    return [(datetime.min + timedelta(seconds=k * every)).time() for k in range(int(DAY // every))]


def _daily_window(at: tuple[time, ...], now: float, tz: ZoneInfo) -> tuple[float, float]:
    return _in_day(sorted(at), now, tz)


def _in_day(times: list[time], now: float, tz: ZoneInfo) -> tuple[float, float]:
    """The window between two consecutive listed wall times (over days) that holds ``now``."""
    today = local_date(now, tz)
    edges = sorted({instant(today + timedelta(days=d), t, tz)
                    for d in (-1, 0, 1, 2) for t in times})
    start = max(edge for edge in edges if edge <= now)
    end = min(edge for edge in edges if edge > now)
    return start, end


def describe_hours(hours: ActiveHours) -> str:
    """``08:00-18:00 mon-fri`` style text for ``preview`` and logs."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    span = ("all day" if hours.start == hours.end
            else f"{hours.start:%H:%M}-{hours.end:%H:%M}")
    days = "every day" if len(hours.days) == 7 else ", ".join(names[d] for d in sorted(hours.days))
    return f"{span}, {days}"


def local_text(epoch: float, tz: ZoneInfo) -> str:
    """An instant as local wall time with its zone, e.g. ``Mon 30 Nov 2026, 08:00 GMT``."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")

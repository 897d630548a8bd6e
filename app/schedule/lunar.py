"""Vietnamese lunar calendar (âm lịch): conversion to and from the solar (Gregorian) calendar.

Vietnam's public holidays Tết Nguyên đán and Giỗ Tổ Hùng Vương fall on lunar dates, so the
holiday calendar needs this conversion for any year a class may run in. No table is shipped
and nothing is downloaded: the dates are computed with Hồ Ngọc Đức's well-known astronomical
algorithm ("Âm lịch Việt Nam"), which is what Vietnamese calendars are printed from.

The rules of the lunisolar calendar, as the algorithm applies them:

* A lunar month starts on the (local) day of a new moon.
* Month 11 is the month that contains the winter solstice (the sun at longitude 270°).
* A lunar year with 13 months (13 new moons between two months 11) has one leap month: the
  first month after month 11 during which the sun enters no new 30° sector of longitude
  (a month with no "major solar term", trung khí). It takes the number of the month before it.

"Local day" is what makes the Vietnamese calendar differ from China's: the algorithm works in
Vietnam's time zone, UTC+7, while China uses UTC+8. A new moon shortly after 16:00 UTC falls
on one day in Hanoi and on the next in Beijing, and now and then that moves a month start, a
solstice month or a leap month. The best-known case is 1985: Vietnam's Tết was on
21 January 1985, China's Spring Festival on 20 February 1985 (a whole month apart, because
the leap month fell differently). ``tz_hours=8.0`` reproduces the Chinese calendar, which the
tests use to show the difference.

Python ``date`` values are proleptic Gregorian, and so is this module (the original switches
to the Julian calendar before 1582; that is irrelevant for training schedules). The
astronomical series are accurate enough for 1800–2199; the tests check 1900–2100.

Everything here is a pure function over integers and dates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

__all__ = ["VIETNAM_TZ_HOURS", "LunarDate", "lunar_to_solar", "solar_to_lunar", "tet"]

VIETNAM_TZ_HOURS = 7.0
"""Vietnam's offset from UTC in hours, used to decide on which day a new moon falls."""

# Julian day number of 1900-01-01 00:00 TT, the epoch of the new-moon series (k = 0 is the
# new moon of 1900-01-01), and the mean length of a lunation (synodic month) in days.
_EPOCH_1900 = 2415021.076998695
_SYNODIC_MONTH = 29.530588853
# date.toordinal() of a day + this = the day's Julian day number (JDN at noon).
_ORDINAL_TO_JDN = 1721425
_DEG = math.pi / 180.0


@dataclass(frozen=True, order=True)
class LunarDate:
    """A day of the Vietnamese lunar calendar.

    ``leap`` is True in a leap month (tháng nhuận), which repeats the number of the month
    before it: 1 April (leap) follows 29 or 30 April.
    """

    day: int
    month: int
    year: int
    leap: bool = False

    def __str__(self) -> str:
        return f"{self.day}/{self.month}{' (nhuận)' if self.leap else ''}/{self.year}"


# -- astronomy -----------------------------------------------------------------------------


def _jdn(d: date) -> int:
    """Julian day number of a (proleptic Gregorian) day."""
    return d.toordinal() + _ORDINAL_TO_JDN


def _from_jdn(jdn: int) -> date:
    return date.fromordinal(jdn - _ORDINAL_TO_JDN)


def _jdn_of(day: int, month: int, year: int) -> int:
    """Julian day number by arithmetic, so that years outside ``date``'s range still work
    for the intermediate steps (e.g. the month 11 of the year before year 1)."""
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    return day + (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045


def _new_moon(k: int) -> float:
    """Julian date (UTC, fractional) of the k-th new moon after 1900-01-01.

    Jean Meeus' series ("Astronomical Algorithms", 1998) as used by Hồ Ngọc Đức: the mean
    new moon plus the main periodic terms of the sun's and the moon's anomalies and the
    moon's argument of latitude, minus ΔT (terrestrial minus universal time).
    """
    t = k / 1236.85  # Julian centuries since 1900-01-01
    t2 = t * t
    t3 = t2 * t
    jd1 = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3
    jd1 += 0.00033 * math.sin((166.56 + 132.87 * t - 0.009173 * t2) * _DEG)
    m = 359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3  # sun's mean anomaly
    mpr = 306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3  # moon's anomaly
    f = 21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3  # moon's latitude arg.
    c1 = (0.1734 - 0.000393 * t) * math.sin(m * _DEG) + 0.0021 * math.sin(2 * _DEG * m)
    c1 = c1 - 0.4068 * math.sin(mpr * _DEG) + 0.0161 * math.sin(_DEG * 2 * mpr)
    c1 = c1 - 0.0004 * math.sin(_DEG * 3 * mpr)
    c1 = c1 + 0.0104 * math.sin(_DEG * 2 * f) - 0.0051 * math.sin(_DEG * (m + mpr))
    c1 = c1 - 0.0074 * math.sin(_DEG * (m - mpr)) + 0.0004 * math.sin(_DEG * (2 * f + m))
    c1 = c1 - 0.0004 * math.sin(_DEG * (2 * f - m)) - 0.0006 * math.sin(_DEG * (2 * f + mpr))
    c1 = c1 + 0.0010 * math.sin(_DEG * (2 * f - mpr)) + 0.0005 * math.sin(_DEG * (2 * mpr + m))
    if t < -11:
        delta_t = 0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    else:
        delta_t = -0.000278 + 0.000265 * t + 0.000262 * t2
    return jd1 + c1 - delta_t


@lru_cache(maxsize=4096)
def _new_moon_day(k: int, tz_hours: float) -> int:
    """Julian day number of the local day on which the k-th new moon falls."""
    return math.floor(_new_moon(k) + 0.5 + tz_hours / 24.0)


def _sun_longitude(jd: float) -> float:
    """The sun's apparent ecliptic longitude, in radians in [0, 2π), at Julian date ``jd``."""
    t = (jd - 2451545.0) / 36525  # Julian centuries since J2000.0
    t2 = t * t
    m = 357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2  # mean anomaly
    l0 = 280.46645 + 36000.76983 * t + 0.0003032 * t2  # mean longitude
    dl = (1.914600 - 0.004817 * t - 0.000014 * t2) * math.sin(_DEG * m)
    dl += (0.019993 - 0.000101 * t) * math.sin(_DEG * 2 * m) + 0.000290 * math.sin(_DEG * 3 * m)
    longitude = (l0 + dl) * _DEG
    return longitude - 2 * math.pi * math.floor(longitude / (2 * math.pi))


def _sun_sector(jdn: int, tz_hours: float) -> int:
    """Which of the twelve 30° sectors (0–11) the sun is in at the start of local day
    ``jdn``. Sector 9 starts at 270°, the winter solstice."""
    return math.floor(_sun_longitude(jdn - 0.5 - tz_hours / 24.0) / math.pi * 6)


@lru_cache(maxsize=1024)
def _month11_start(year: int, tz_hours: float) -> int:
    """JDN of the first day of lunar month 11 that starts in solar ``year``, i.e. the month
    that contains that year's winter solstice."""
    off = _jdn_of(31, 12, year) - 2415021
    k = math.floor(off / _SYNODIC_MONTH)
    start = _new_moon_day(k, tz_hours)
    if _sun_sector(start, tz_hours) >= 9:  # that month starts after the solstice
        start = _new_moon_day(k - 1, tz_hours)
    return start


@lru_cache(maxsize=1024)
def _leap_month_offset(a11: int, tz_hours: float) -> int:
    """In a 13-month year starting at month 11 ``a11``, how many months after it the leap
    month comes: the first month whose start and end see the sun in the same sector (it
    contains no major solar term)."""
    k = math.floor((a11 - _EPOCH_1900) / _SYNODIC_MONTH + 0.5)
    i = 1
    sector = _sun_sector(_new_moon_day(k + i, tz_hours), tz_hours)
    while True:
        last = sector
        i += 1
        sector = _sun_sector(_new_moon_day(k + i, tz_hours), tz_hours)
        if sector == last or i >= 14:
            return i - 1


def _leap_month_number(leap_offset: int) -> int:
    """The number a leap month repeats: offset 1 from month 11 is a leap 11, 2 a leap 12,
    3 a leap 1, and so on."""
    return (leap_offset + 10 - 1) % 12 + 1


# -- conversion ----------------------------------------------------------------------------


def solar_to_lunar(d: date, *, tz_hours: float = VIETNAM_TZ_HOURS) -> LunarDate:
    """The Vietnamese lunar date of solar day ``d``."""
    day_number = _jdn(d)
    # The new moon on or before the day. The mean lunation gives a first guess; the true new
    # moon can be more than half a day away from the mean, so step back until it is not
    # after the day. (The published algorithm steps back once only, which gives "day 0" on
    # 2054-05-07 and 2062-04-09.)
    k = math.floor((day_number - _EPOCH_1900) / _SYNODIC_MONTH) + 1
    month_start = _new_moon_day(k, tz_hours)
    while month_start > day_number:
        k -= 1
        month_start = _new_moon_day(k, tz_hours)
    # a11 and b11: the months 11 before and after the day; they bound its "solstice year".
    a11 = _month11_start(d.year, tz_hours)
    b11 = a11
    if a11 >= month_start:
        lunar_year = d.year
        a11 = _month11_start(d.year - 1, tz_hours)
    else:
        lunar_year = d.year + 1
        b11 = _month11_start(d.year + 1, tz_hours)
    lunar_day = day_number - month_start + 1
    diff = math.floor((month_start - a11) / 29)  # months since month 11
    leap = False
    lunar_month = diff + 11
    if b11 - a11 > 365:  # 13 months between the two months 11: there is a leap month
        leap_offset = _leap_month_offset(a11, tz_hours)
        if diff >= leap_offset:
            lunar_month = diff + 10
            leap = diff == leap_offset
    if lunar_month > 12:
        lunar_month -= 12
    if lunar_month >= 11 and diff < 4:  # months 11 and 12 belong to the year before Tết
        lunar_year -= 1
    return LunarDate(lunar_day, lunar_month, lunar_year, leap)


def lunar_to_solar(
    day: int,
    month: int,
    year: int,
    leap: bool = False,
    *,
    tz_hours: float = VIETNAM_TZ_HOURS,
) -> date:
    """The solar date of lunar ``day``/``month``/``year`` (``leap`` for a leap month).

    Raises ``ValueError`` for a date that does not exist: a day outside the month's 29 or
    30 days, a month outside 1–12, or a leap month that the year does not have.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"lunar month must be 1–12, not {month}")
    if not 1 <= day <= 30:
        raise ValueError(f"lunar day must be 1–30, not {day}")
    if month < 11:
        a11 = _month11_start(year - 1, tz_hours)
        b11 = _month11_start(year, tz_hours)
    else:
        a11 = _month11_start(year, tz_hours)
        b11 = _month11_start(year + 1, tz_hours)
    offset = (month - 11) % 12  # months after month 11
    if b11 - a11 > 365:
        leap_offset = _leap_month_offset(a11, tz_hours)
        if leap and month != _leap_month_number(leap_offset):
            raise ValueError(f"lunar year {year} has no leap month {month}")
        if leap or offset >= leap_offset:
            offset += 1
    elif leap:
        raise ValueError(f"lunar year {year} has no leap month")
    k = math.floor(0.5 + (a11 - _EPOCH_1900) / _SYNODIC_MONTH)
    month_start = _new_moon_day(k + offset, tz_hours)
    if day > _new_moon_day(k + offset + 1, tz_hours) - month_start:
        raise ValueError(f"lunar month {month}/{year} has only 29 days")
    return _from_jdn(month_start + day - 1)


def tet(year: int, *, tz_hours: float = VIETNAM_TZ_HOURS) -> date:
    """Tết Nguyên đán, the first day of the first lunar month of ``year``."""
    return lunar_to_solar(1, 1, year, tz_hours=tz_hours)

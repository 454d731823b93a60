"""The economy's pure rules: refill moments (periods, month ends, refill times, time zones, DST),
allowances with role tiers, and which part of a balance each movement touches."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import economy
from bot.economy import RefillSchedule
from bot.models import SERVER_WIDE, AllowanceRule, Balance, EconomySettings, Period, Refund

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = UTC_ZONE) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def local(epoch: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch, zone)


# -- daily / weekly / monthly in UTC ---------------------------------------------------------------


def test_daily_refill_is_at_midnight_utc_by_default():
    daily = RefillSchedule(Period.DAILY)

    assert daily.last_refill(after=0, now=at("2025-03-05 10:00")) == at("2025-03-05 00:00")
    assert daily.next_refill(at("2025-03-05 10:00")) == at("2025-03-06 00:00")


def test_a_refill_moment_itself_belongs_to_the_new_period():
    daily = RefillSchedule(Period.DAILY)
    midnight = at("2025-03-06 00:00")

    assert daily.last_refill(after=0, now=midnight) == midnight
    assert daily.last_refill(after=0, now=midnight - 1) == at("2025-03-05 00:00")
    assert daily.next_refill(midnight) == at("2025-03-07 00:00")


def test_no_refill_is_due_when_the_last_one_is_not_after_since():
    daily = RefillSchedule(Period.DAILY)

    assert daily.last_refill(after=at("2025-03-05 00:00"), now=at("2025-03-05 23:59")) is None
    assert daily.last_refill(after=at("2025-03-04 23:59"), now=at("2025-03-05 23:59")) == at("2025-03-05")


def test_weekly_refill_is_on_monday():
    weekly = RefillSchedule(Period.WEEKLY)
    wednesday = at("2025-03-05 10:00")

    assert weekly.last_refill(after=0, now=wednesday) == at("2025-03-03 00:00")
    assert weekly.next_refill(wednesday) == at("2025-03-10 00:00")


def test_weekly_refill_on_monday_before_the_refill_time_is_last_weeks():
    weekly = RefillSchedule(Period.WEEKLY, refill_minute=6 * 60)

    assert weekly.last_refill(after=0, now=at("2025-03-10 05:59")) == at("2025-03-03 06:00")
    assert weekly.last_refill(after=0, now=at("2025-03-10 06:00")) == at("2025-03-10 06:00")


def test_monthly_refill_is_on_the_first():
    monthly = RefillSchedule(Period.MONTHLY)

    assert monthly.last_refill(after=0, now=at("2025-03-17 12:00")) == at("2025-03-01 00:00")
    assert monthly.next_refill(at("2025-03-17 12:00")) == at("2025-04-01 00:00")


@pytest.mark.parametrize(
    ("before", "first_of_next"),
    [
        ("2025-01-31 23:59", "2025-02-01 00:00"),  # Jan 31 -> Feb
        ("2025-02-28 12:00", "2025-03-01 00:00"),  # a short February
        ("2024-02-29 12:00", "2024-03-01 00:00"),  # a leap day
        ("2025-04-30 08:00", "2025-05-01 00:00"),  # a 30-day month
        ("2025-12-31 23:00", "2026-01-01 00:00"),  # the year turns
    ],
)
def test_monthly_refill_after_a_month_end_is_the_next_first(before, first_of_next):
    monthly = RefillSchedule(Period.MONTHLY)

    assert monthly.next_refill(at(before)) == at(first_of_next)
    assert monthly.last_refill(after=at(before), now=at(first_of_next)) == at(first_of_next)


def test_a_refill_time_that_is_not_midnight():
    daily = RefillSchedule(Period.DAILY, refill_minute=18 * 60 + 30)

    assert daily.last_refill(after=0, now=at("2025-03-05 18:29")) == at("2025-03-04 18:30")
    assert daily.last_refill(after=0, now=at("2025-03-05 18:30")) == at("2025-03-05 18:30")
    assert daily.next_refill(at("2025-03-05 18:30")) == at("2025-03-06 18:30")


def test_never_has_no_refills():
    never = RefillSchedule(Period.NEVER)

    assert never.last_refill(after=0, now=at("2030-01-01")) is None
    assert never.next_refill(at("2025-03-05")) is None


# -- time zones --------------------------------------------------------------------------------


def test_midnight_in_a_time_zone_ahead_of_utc():
    kolkata = RefillSchedule(Period.DAILY, timezone="Asia/Kolkata")

    # Midnight in India (UTC+5:30) is 18:30 UTC the day before.
    assert kolkata.next_refill(at("2025-03-05 12:00")) == at("2025-03-05 18:30")


def test_monthly_refill_waits_for_the_first_in_the_servers_time_zone():
    monthly = RefillSchedule(Period.MONTHLY, timezone="America/New_York")
    # 04:30 UTC on Feb 1 is still Jan 31 in New York: January's allowance still runs.
    late_january_local = at("2025-02-01 04:30")

    assert monthly.last_refill(after=0, now=late_january_local) == at("2025-01-01 00:00", NEW_YORK)
    assert monthly.next_refill(late_january_local) == at("2025-02-01 00:00", NEW_YORK)
    assert at("2025-02-01 00:00", NEW_YORK) == at("2025-02-01 05:00")


def test_daily_refills_stay_at_local_midnight_across_a_dst_change():
    berlin = RefillSchedule(Period.DAILY, timezone="Europe/Berlin")
    # Clocks in Berlin jump from 02:00 to 03:00 on 2025-03-30: that day is 23 hours long.
    before = berlin.next_refill(at("2025-03-29 12:00", BERLIN))
    assert before is not None
    after = berlin.next_refill(before)
    assert after is not None

    assert local(before, BERLIN).replace(tzinfo=None) == datetime(2025, 3, 30)
    assert local(after, BERLIN).replace(tzinfo=None) == datetime(2025, 3, 31)
    assert after - before == timedelta(hours=23).total_seconds()


def test_a_refill_time_skipped_by_dst_happens_when_the_clock_has_passed_it():
    berlin = RefillSchedule(Period.DAILY, refill_minute=2 * 60 + 30, timezone="Europe/Berlin")

    refill = berlin.next_refill(at("2025-03-29 12:00", BERLIN))

    # 02:30 does not exist on 2025-03-30 in Berlin; the refill comes at 03:30 CEST (01:30 UTC).
    assert refill == at("2025-03-30 01:30")
    assert berlin.last_refill(after=0, now=at("2025-03-30 01:29")) == at("2025-03-29 01:30")


def test_a_refill_time_repeated_by_dst_happens_the_first_time():
    berlin = RefillSchedule(Period.DAILY, refill_minute=2 * 60 + 30, timezone="Europe/Berlin")

    refill = berlin.next_refill(at("2025-10-25 12:00", BERLIN))

    # 02:30 happens twice on 2025-10-26 in Berlin (CEST, then CET): the first is 00:30 UTC.
    assert refill == at("2025-10-26 00:30")
    assert berlin.next_refill(at("2025-10-26 00:30")) == at("2025-10-27 01:30")


@pytest.mark.parametrize(
    ("period", "count"), [(Period.DAILY, 365), (Period.WEEKLY, 52), (Period.MONTHLY, 12)]
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_a_year_of_refills_comes_at_the_local_refill_time_each_period(period, count, zone):
    schedule = RefillSchedule(period, refill_minute=7 * 60 + 15, timezone=zone)
    tz = ZoneInfo(zone)
    moment = at("2025-01-01 12:00", tz)
    end = at("2026-01-01 12:00", tz)
    seen: list[datetime] = []
    while (moment := schedule.next_refill(moment) or end) < end:
        seen.append(local(moment, tz))

    assert len(seen) == count
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))
    assert all((d.hour, d.minute) == (7, 15) for d in seen)
    if period is Period.WEEKLY:
        assert {d.weekday() for d in seen} == {0}
    if period is Period.MONTHLY:
        assert {d.day for d in seen} == {1}


def test_last_and_next_refill_agree():
    schedule = RefillSchedule(Period.WEEKLY, refill_minute=90, timezone="America/New_York")
    moment = at("2025-01-01 00:00")
    for _ in range(200):
        moment += 37_003  # about ten hours, never aligned with a refill
        last = schedule.last_refill(after=0, now=moment)
        upcoming = schedule.next_refill(moment)
        assert last is not None and upcoming is not None
        assert last <= moment < upcoming
        assert schedule.next_refill(last) == upcoming


# -- which refills are due ---------------------------------------------------------------------


def weekly(**overrides) -> EconomySettings:
    return EconomySettings(guild_id=1, period=Period.WEEKLY, **overrides)


def test_a_refill_is_due_once_a_period_start_has_passed_since_the_last():
    settings = weekly()

    assert economy.refill_due(settings, [], [], since=at("2025-03-03"), now=at("2025-03-09 23:59")) is None
    assert economy.refill_due(settings, [], [], since=at("2025-03-03"), now=at("2025-03-20")) == at(
        "2025-03-17"
    )


def test_a_schedule_change_does_not_count_period_starts_before_it():
    # Daily from Wednesday 15:00: Wednesday 00:00 is not a refill, Thursday 00:00 is.
    settings = EconomySettings(guild_id=1, period=Period.DAILY, schedule_from=at("2025-03-05 15:00"))

    assert economy.refill_due(settings, [], [], since=at("2025-03-03"), now=at("2025-03-05 16:00")) is None
    assert economy.refill_due(settings, [], [], since=at("2025-03-03"), now=at("2025-03-06 01:00")) == at(
        "2025-03-06"
    )


def test_a_refill_due_under_the_old_schedule_is_carried_over():
    before = weekly()
    change = at("2025-03-04 12:00")  # Tuesday, after Monday's refill
    after = EconomySettings(
        guild_id=1,
        period=Period.WEEKLY,
        refill_minute=600,
        schedule_from=change,
        carried_refill_at=economy.carry_refill(before, change),
    )

    # A member last refilled the week before still gets Monday's refill.
    assert economy.refill_due(after, [], [], since=at("2025-02-24"), now=at("2025-03-05")) == at("2025-03-03")
    # One refilled on Monday does not get it twice.
    assert economy.refill_due(after, [], [], since=at("2025-03-03"), now=at("2025-03-05")) is None


def test_apply_now_refills_members_with_that_role_only():
    rules = [AllowanceRule(role_id=7, amount=300, effective_from=at("2025-03-05 12:00"), refills=True)]
    settings = EconomySettings(guild_id=1)

    assert economy.refill_due(settings, rules, [7], since=at("2025-03-01"), now=at("2025-03-06")) == at(
        "2025-03-05 12:00"
    )
    assert economy.refill_due(settings, rules, [8], since=at("2025-03-01"), now=at("2025-03-06")) is None
    assert economy.refill_due(settings, rules, None, since=at("2025-03-01"), now=at("2025-03-06")) is not None


# -- allowances and role tiers ----------------------------------------------------------------------


def test_the_default_allowance_applies_until_the_server_sets_one():
    assert economy.allowance_at([], [], default=100) == 100
    rules = [AllowanceRule(SERVER_WIDE, 40, effective_from=10.0)]
    assert economy.allowance_at(rules, [], default=100, at=9.0) == 100
    assert economy.allowance_at(rules, [], default=100, at=10.0) == 40


def test_a_members_allowance_is_the_highest_of_server_and_roles():
    rules = [
        AllowanceRule(SERVER_WIDE, 100, 1.0),
        AllowanceRule(role_id=11, amount=300, effective_from=1.0),
        AllowanceRule(role_id=12, amount=200, effective_from=1.0),
        AllowanceRule(role_id=13, amount=50, effective_from=1.0),
    ]

    assert economy.allowance_at(rules, [11, 12], default=0) == 300
    assert economy.allowance_at(rules, [12], default=0) == 200
    assert economy.allowance_at(rules, [13], default=0) == 100
    assert economy.allowance_at(rules, [99], default=0) == 100


def test_the_latest_decision_for_a_role_wins():
    rules = [AllowanceRule(11, 300, 1.0), AllowanceRule(11, 0, 5.0)]

    assert economy.allowance_at(rules, [11], default=100, at=4.0) == 300
    assert economy.allowance_at(rules, [11], default=100, at=5.0) == 100
    assert economy.current_rules(rules) == {11: 0}


# -- which part of a balance moves -----------------------------------------------------------------


def test_spending_takes_the_allowance_first_then_bonus():
    assert economy.spend(30, Balance(50, 20)) == (30, 0)
    assert economy.spend(60, Balance(50, 20)) == (50, 10)
    assert economy.spend(10, Balance(0, 20)) == (0, 10)


def test_taking_credits_away_takes_bonus_first_then_allowance():
    assert economy.take_away(15, Balance(50, 20)) == (0, 15)
    assert economy.take_away(30, Balance(50, 20)) == (10, 20)


def test_a_refund_goes_back_where_it_came_from():
    assert economy.refund(30, 20, Balance(0, 0), allowance=100, refilled=False) == Refund(30, 20)


def test_a_refund_after_a_refill_comes_back_as_bonus():
    assert economy.refund(30, 20, Balance(100, 0), allowance=100, refilled=True) == Refund(0, 50)


def test_a_refund_never_fills_the_allowance_beyond_the_periods_allowance():
    # A moderator reset the allowance to full while the split ran.
    assert economy.refund(30, 0, Balance(90, 0), allowance=100, refilled=False) == Refund(10, 20)


def test_a_members_own_cancel_after_a_refill_returns_the_bonus_part_and_lets_the_allowance_expire():
    # Holding a job across a refill and cancelling it must not turn last period's allowance into
    # bonus, which never expires.
    back = economy.refund(30, 20, Balance(100, 0), allowance=100, refilled=True, own_cancel=True)

    assert back == Refund(0, 20, expired=30) and back.total == 20


def test_a_members_own_cancel_in_the_same_period_returns_everything():
    same_period = {"refilled": False, "own_cancel": True}
    assert economy.refund(30, 20, Balance(0, 0), allowance=100, **same_period) == Refund(30, 20)
    # (the allowance still never fills beyond this period's allowance)
    assert economy.refund(30, 0, Balance(90, 0), allowance=100, **same_period) == Refund(10, 20)


def test_setting_a_balance_fills_the_allowance_first():
    assert economy.set_to(60, allowance=100) == Balance(60, 0)
    assert economy.set_to(250, allowance=100) == Balance(100, 150)


# -- parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("7:30", 450), ("23:59", 1439), (" 18:05 ", 1085)]
)
def test_refill_times_are_parsed(text, minutes):
    assert economy.parse_refill_time(text) == minutes


@pytest.mark.parametrize("text", ["24:00", "7", "12:60", "noon", "12:5", "-1:00", ""])
def test_bad_refill_times_are_refused(text):
    assert economy.parse_refill_time(text) is None


def test_time_zone_names_are_matched_case_insensitively():
    assert economy.canonical_timezone("europe/berlin") == "Europe/Berlin"
    assert economy.canonical_timezone("UTC") == "UTC"
    assert economy.canonical_timezone("Mars/Olympus") is None
    assert economy.canonical_timezone("../../etc/passwd") is None


def test_utc_epochs_used_here_are_what_they_say():
    assert at("2025-03-03") == datetime(2025, 3, 3, tzinfo=UTC).timestamp()

"""Task 4: cron presets and time zones as timetables, a freshness SLA as a schedule and a check, one DAG
combining an asset trigger with a daily catch-up."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.ex11_5_event_driven.conftest import assets_in
from tests.ex11_5_event_driven.probes import next_runs  # computed beside the learner's timetable
from tests.harness.dagrun import load_dag
from tests.harness.remote import subject_module


@pytest.mark.criterion("ex11_5.t4.cron_presets")
def test_presets_and_time_zones_become_timetables(event_driven):
    CronTriggerTimetable = subject_module("airflow.sdk").CronTriggerTimetable  # noqa: N806 (the learner's one)
    expected = {"hourly": "0 * * * *", "daily": "0 0 * * *", "daily_6am": "0 6 * * *", "weekly": "0 0 * * 0",
                "monthly": "0 0 1 * *", "every_15min": "*/15 * * * *", "every_30min": "*/30 * * * *"}
    for preset, cron in expected.items():
        timetable = event_driven.cron_schedule(preset)
        assert isinstance(timetable, CronTriggerTimetable) and timetable.expression == cron, (
            f"cron_schedule({preset!r}): expected CronTriggerTimetable({cron!r}), got {timetable!r}"
        )
    start = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    runs = next_runs(event_driven.cron_schedule("0 6 * * *", "America/New_York"), start)
    assert runs == [datetime(2025, 1, 16, 11, 0, tzinfo=UTC), datetime(2025, 1, 17, 11, 0, tzinfo=UTC)], (
        f"'0 6 * * *' in America/New_York after {start}: expected 6 AM New York (11:00 UTC in winter), got {runs}"
    )
    summer = next_runs(event_driven.cron_schedule("daily_6am", "America/New_York"), datetime(2025, 7, 1, tzinfo=UTC), 1)
    assert summer == [datetime(2025, 7, 1, 10, 0, tzinfo=UTC)], f"daily_6am New York in July: expected 10:00 UTC, got {summer}"
    for bad, named in [(("twice_hourly", "UTC"), "twice_hourly"), (("0 6 * *", "UTC"), "0 6 * *"),
                       (("0 25 * * *", "UTC"), "0 25 * * *"), (("daily", "Mars/Olympus"), "Mars/Olympus")]:
        with pytest.raises(ValueError) as raised:
            event_driven.cron_schedule(*bad)
            pytest.fail(f"cron_schedule{bad}: expected ValueError")
        assert named in str(raised.value), (
            f"cron_schedule{bad}: expected a ValueError naming {named!r}, got {str(raised.value)!r}")


@pytest.mark.criterion("ex11_5.t4.freshness_schedule")
def test_the_sla_table_gives_the_schedule(event_driven):
    hours = timedelta(hours=1)
    table = {1: "0 * * * *", 3: "0 * * * *", 6: "0 */3 * * *", 12: "0 0,12 * * *", 24: "0 0 * * *", 48: "0 0 * * *"}
    for warn, cron in table.items():
        policy = event_driven.FreshnessPolicy(warn_after=warn * hours, error_after=max(24, warn) * hours)
        timetable = event_driven.freshness_schedule(policy)
        runs = next_runs(timetable, datetime(2025, 1, 15, 0, 30, tzinfo=UTC), 3)
        expected_runs = next_runs(event_driven.cron_schedule(cron), datetime(2025, 1, 15, 0, 30, tzinfo=UTC), 3)
        assert runs == expected_runs, f"warn_after {warn} h: expected the schedule {cron!r}, got runs {runs}"
    berlin = event_driven.freshness_schedule(
        event_driven.FreshnessPolicy(warn_after=24 * hours, error_after=48 * hours), "Europe/Berlin")
    runs = next_runs(berlin, datetime(2025, 1, 15, 12, 0, tzinfo=UTC), 1)
    assert runs == [datetime(2025, 1, 15, 23, 0, tzinfo=UTC)], (
        f"freshness_schedule(warn_after 24 h, 'Europe/Berlin'): expected daily at midnight Berlin time (23:00 UTC "
        f"in winter), got {runs}")
    for warn, error in [(6, 3), (0, 24)]:
        with pytest.raises(ValueError):
            event_driven.FreshnessPolicy(warn_after=warn * hours, error_after=error * hours)
            pytest.fail(f"FreshnessPolicy(warn_after={warn} h, error_after={error} h): expected ValueError")


@pytest.mark.criterion("ex11_5.t4.freshness_schedule")
def test_below_an_hour_every_15_minutes_down_to_30_minutes_then_refused(event_driven):
    start = datetime(2025, 1, 15, 0, 5, tzinfo=UTC)
    every_15 = next_runs(event_driven.cron_schedule("*/15 * * * *"), start, 3)
    for minutes in (30, 45):
        policy = event_driven.FreshnessPolicy(warn_after=timedelta(minutes=minutes), error_after=timedelta(hours=2))
        try:
            runs = next_runs(event_driven.freshness_schedule(policy), start, 3)
        except ValueError as exc:
            pytest.fail(f"freshness_schedule(warn_after {minutes} min): expected every 15 minutes, got ValueError: {exc}")
        assert runs == every_15, f"freshness_schedule(warn_after {minutes} min): expected every 15 minutes, got runs {runs}"
    policy = event_driven.FreshnessPolicy(warn_after=timedelta(minutes=20), error_after=timedelta(hours=2))
    with pytest.raises(ValueError):
        event_driven.freshness_schedule(policy)
        pytest.fail("freshness_schedule(warn_after 20 min): expected ValueError (below 30 min: use an event trigger)")


@pytest.mark.criterion("ex11_5.t4.freshness_schedule")
def test_the_freshness_dag_runs_on_the_schedule_of_its_sla(event_driven, monkeypatch):
    monkeypatch.delenv("WORKBOOK_WARN_AFTER_HOURS", raising=False)
    monkeypatch.delenv("WORKBOOK_ERROR_AFTER_HOURS", raising=False)
    start = datetime(2025, 1, 15, 0, 30, tzinfo=UTC)
    runs = next_runs(load_dag("ex11_5_freshness").timetable, start, 3)
    policy = event_driven.FreshnessPolicy(warn_after=timedelta(hours=6), error_after=timedelta(hours=24))
    expected = next_runs(event_driven.freshness_schedule(policy), start, 3)
    assert runs == expected, (
        f"ex11_5_freshness with its SLA (warn after 6 h): expected the schedule of the seed's table (every 3 "
        f"hours), runs {expected}, got {runs}")


@pytest.mark.criterion("ex11_5.t4.freshness_check")
def test_freshness_states_at_the_boundaries(event_driven):
    policy = event_driven.FreshnessPolicy(warn_after=timedelta(hours=6), error_after=timedelta(hours=24))
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    cases = {timedelta(hours=1): "fresh", timedelta(hours=6): "fresh", timedelta(hours=6, seconds=1): "warn",
             timedelta(hours=24): "warn", timedelta(hours=24, seconds=1): "error"}
    for age, expected in cases.items():
        state, measured = event_driven.check_freshness(now - age, now, policy)
        assert (state, measured) == (expected, age), (
            f"check_freshness() of data {age} old (warn 6 h, error 24 h): expected ({expected!r}, {age}), "
            f"got ({state!r}, {measured})"
        )
    with pytest.raises(ValueError):
        event_driven.check_freshness(datetime(2025, 1, 15, 11, 0), now, policy)  # noqa: DTZ001 (naive on purpose)
        pytest.fail("check_freshness() with a naive datetime: expected ValueError")


@pytest.mark.integration
@pytest.mark.criterion("ex11_5.t4.freshness_check")
def test_the_freshness_dag_fails_on_stale_data(run_dag, landing):
    result = run_dag("ex11_5_freshness", env={"WORKBOOK_LANDING_URL": landing.url})
    assert result.state == "failed", f"no file in the landing zone at all: expected the run failed, got {result.state!r}"
    path = landing.drop("old.csv")
    stale = path.stat().st_mtime - 30 * 3600
    os.utime(path, (stale, stale))
    result = run_dag("ex11_5_freshness", env={"WORKBOOK_LANDING_URL": landing.url})
    assert result.state == "failed", f"newest file 30 h old (error after 24 h): expected the run failed, got {result.state!r}"
    landing.drop("new.csv")
    result = run_dag("ex11_5_freshness", env={"WORKBOOK_LANDING_URL": landing.url}).assert_success()
    check = next(iter(result.xcoms.values()), None)
    assert isinstance(check, dict) and check.get("state") == "fresh", f"a file just dropped: expected state fresh, got {check!r}"


@pytest.mark.criterion("ex11_5.t4.combined_schedule")
def test_the_refresh_dag_combines_the_asset_and_a_daily_catch_up(event_driven, monkeypatch):
    AssetOrTimeSchedule = subject_module("airflow.sdk").AssetOrTimeSchedule  # noqa: N806 (the learner's one)
    monkeypatch.setenv("WORKBOOK_BRONZE_ASSET_URI", "s3://landing/bronze/sales")
    monkeypatch.setenv("WORKBOOK_TIMEZONE", "Asia/Tokyo")
    dag = load_dag("ex11_5_sales_refresh")
    timetable = dag.timetable
    assert isinstance(timetable, AssetOrTimeSchedule), f"ex11_5_sales_refresh: expected AssetOrTimeSchedule, got {timetable!r}"
    uris = [a.uri for a in assets_in(timetable.asset_condition)]
    assert uris == ["s3://landing/bronze/sales"], f"its asset: expected WORKBOOK_BRONZE_ASSET_URI, got {uris}"
    runs = next_runs(timetable.timetable, datetime(2025, 1, 15, tzinfo=UTC), 2)
    assert runs == [datetime(2025, 1, 15, 21, 0, tzinfo=UTC), datetime(2025, 1, 16, 21, 0, tzinfo=UTC)], (
        f"the catch-up: expected daily at 06:00 in WORKBOOK_TIMEZONE (Asia/Tokyo = 21:00 UTC), got {runs}"
    )


@pytest.mark.integration
@pytest.mark.criterion("ex11_5.t4.combined_schedule")
def test_a_run_without_events_catches_up_on_everything(run_dag, landing):
    for name in ("b.csv", "a.csv", "notes.txt"):
        landing.drop(name)
    result = run_dag("ex11_5_sales_refresh", env={"WORKBOOK_LANDING_URL": landing.url}).assert_success()
    collected = result.xcoms.get("collect_keys")
    expected = {"trigger": "schedule", "keys": [landing.url + "a.csv", landing.url + "b.csv"]}
    assert collected == expected, f"a run with no asset event: expected the catch-up over every CSV {expected!r}, got {collected!r}"

"""Task 1: NewObjectTrigger, the object-store watcher behind an AssetWatcher."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime

import pytest

from tests.ex11_5_event_driven import probes
from tests.ex11_5_event_driven.conftest import assets_in, no_event, take_events
from tests.harness import roundtrip
from tests.harness.dagrun import load_dag
from tests.harness.remote import subject_module


def watcher(event_driven, landing, tmp_path, pattern="*.csv"):
    return event_driven.NewObjectTrigger(prefix=landing.url, pattern=pattern,
                                         state_path=str(tmp_path / "state" / "seen.json"), poll_interval=0.01)


@pytest.mark.criterion("ex11_5.t1.serialize_roundtrip")
def test_serialize_keeps_every_argument(event_driven, target, landing, tmp_path):
    BaseEventTrigger = subject_module("airflow.triggers.base").BaseEventTrigger  # noqa: N806 (the learner's base)
    trigger = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.parquet", state_path=str(tmp_path / "s.json"),
                                            poll_interval=2.5)
    assert isinstance(trigger, BaseEventTrigger), "NewObjectTrigger must subclass BaseEventTrigger (AssetWatcher)"
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{target.package}.event_driven.NewObjectTrigger", f"serialize() classpath: got {classpath!r}"
    expected = {"prefix": landing.url, "pattern": "*.parquet", "state_path": str(tmp_path / "s.json"),
                "poll_interval": 2.5}
    assert kwargs == expected, f"serialize() kwargs: expected {expected!r}, got {kwargs!r}"
    roundtrip(trigger)


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.one_event_per_object")
async def test_one_event_per_new_object(event_driven, landing, tmp_path):
    first = landing.drop("sales-001.csv", rows=2)
    landing.drop("sales-002.csv")
    landing.drop("notes.txt")  # does not match *.csv
    landing.drop_partial("sales-003.csv")  # an upload in progress
    (landing.root / "archive.csv").mkdir()  # a directory that happens to match
    trigger = watcher(event_driven, landing, tmp_path)
    events = await take_events(trigger, 2, settle=0.1)
    keys = [e.get("key") for e in events]
    expected = [landing.url + "sales-001.csv", landing.url + "sales-002.csv"]
    assert keys == expected, f"two CSV files, a .txt, a partial upload and a directory: expected events for " \
                             f"{expected}, got {events!r}"
    stat = first.stat()
    assert events[0].get("size") == stat.st_size, f"event size: expected {stat.st_size}, got {events[0]!r}"
    modified = datetime.fromisoformat(str(events[0].get("modified")))
    assert abs(modified.timestamp() - stat.st_mtime) < 1 and modified.tzinfo is not None, (
        f"event modified: expected the file's mtime as an aware ISO datetime, got {events[0].get('modified')!r}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.one_event_per_object")
async def test_a_running_watcher_reports_each_new_file_once(event_driven, landing, tmp_path):
    trigger = watcher(event_driven, landing, tmp_path)
    agen = trigger.run()
    try:
        for name in ("a.csv", "b.csv"):
            landing.drop(name)
            payload = (await asyncio.wait_for(anext(agen), 5)).payload
            assert payload.get("key") == landing.url + name, f"after dropping {name}: got {payload!r}"
        pending = asyncio.ensure_future(anext(agen))
        done, _ = await asyncio.wait([pending], timeout=0.15)
        assert not done, f"no new file: expected no event, got {pending.result().payload!r}"
        landing.drop("c.csv")
        payload = (await asyncio.wait_for(pending, 5)).payload
        assert payload.get("key") == landing.url + "c.csv", f"after dropping c.csv: got {payload!r}"
    finally:
        await agen.aclose()


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.never_twice_after_restart")
async def test_a_recreated_watcher_does_not_report_old_objects(event_driven, landing, tmp_path):
    landing.drop("a.csv")
    landing.drop("b.csv")
    await take_events(watcher(event_driven, landing, tmp_path), 2)
    # The triggerer restarts, or another triggerer takes the watcher over: a new instance, same kwargs.
    rebuilt = roundtrip(watcher(event_driven, landing, tmp_path))
    await no_event(rebuilt, within=0.15)
    landing.drop("c.csv")
    events = await take_events(roundtrip(watcher(event_driven, landing, tmp_path)), 1, settle=0.1)
    assert [e.get("key") for e in events] == [landing.url + "c.csv"], (
        f"recreated after a.csv and b.csv were reported, then c.csv dropped: expected only c.csv, got {events!r}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.never_twice_after_restart")
async def test_an_object_rewritten_later_is_new_again(event_driven, landing, tmp_path):
    path = landing.drop("a.csv")
    await take_events(watcher(event_driven, landing, tmp_path), 1)
    later = path.stat().st_mtime + 60
    os.utime(path, (later, later))  # the upstream system uploads a corrected a.csv
    events = await take_events(watcher(event_driven, landing, tmp_path), 1, settle=0.1)
    assert events[0].get("key") == landing.url + "a.csv", f"a.csv rewritten: expected one event, got {events!r}"


@pytest.mark.criterion("ex11_5.t1.non_blocking")
def test_listing_runs_off_the_event_loop(event_driven, landing, tmp_path, monkeypatch):
    landing.drop("a.csv")
    trigger = watcher(event_driven, landing, tmp_path)
    # The file operations of the learner's code, recorded where it runs with the thread each ran on.
    recorder = probes.call_recorder()
    trigger_os = subject_module("os")
    for name in ("scandir", "listdir", "stat", "replace", "rename"):
        monkeypatch.setattr(trigger_os, name, recorder.wrap(getattr(trigger_os, name), f"os.{name}"))
    for module in ("builtins", "io"):  # pathlib's read_text and write_text open through io.open
        opener = subject_module(module)
        monkeypatch.setattr(opener, "open", recorder.wrap(opener.open, "open"))
    events = asyncio.run(take_events(trigger, 1))
    monkeypatch.undo()
    on_loop = [f"{call['name']}({call['args'][0]!r})" for call in recorder.calls() if call["on_loop"] and call["args"]
               and (call["name"] != "open" or call["args"][0].startswith(str(tmp_path)))]  # open: the state file
    assert events, "no event"
    assert not on_loop, f"run() listed or read files on the event loop's thread (use asyncio.to_thread): {on_loop[:3]}"


@pytest.mark.criterion("ex11_5.t1.watcher_wiring")
def test_the_dag_is_scheduled_on_an_asset_watched_by_the_trigger(event_driven, target, landing, tmp_path, monkeypatch):
    env = {"WORKBOOK_LANDING_URL": landing.url, "WORKBOOK_WATCHER_STATE": str(tmp_path / "w.json"),
           "WORKBOOK_POLL_INTERVAL": "0.01"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dag = load_dag("ex11_5_landing_zone")
    assets = assets_in(getattr(dag.timetable, "asset_condition", None))
    watchers = [w for asset in assets for w in getattr(asset, "watchers", [])]
    assert len(watchers) == 1, f"ex11_5_landing_zone: expected schedule=[an Asset with one AssetWatcher], " \
                               f"got timetable {dag.timetable!r}"
    trigger = watchers[0].trigger
    assert probes.class_of(trigger) is event_driven.NewObjectTrigger, (
        f"the watcher's trigger: expected {target.package}.event_driven.NewObjectTrigger, got {probes.class_of(trigger)!r}"
    )
    _, kwargs = trigger.serialize()
    assert kwargs.get("prefix") == landing.url and kwargs.get("state_path") == env["WORKBOOK_WATCHER_STATE"], (
        f"the watcher must read WORKBOOK_LANDING_URL and WORKBOOK_WATCHER_STATE: got {kwargs!r}"
    )
    assert kwargs.get("poll_interval") == 0.01, f"poll_interval from WORKBOOK_POLL_INTERVAL: got {kwargs!r}"
    landing.drop("a.csv")
    event = asyncio.run(take_events(trigger, 1))[0]
    assert event.get("key") == landing.url + "a.csv", f"the DAG's watcher on a.csv: got {event!r}"


@pytest.mark.integration
@pytest.mark.criterion("ex11_5.t1.dag_loads_files")
def test_the_dag_loads_the_files_its_watcher_reports(run_dag, landing, tmp_path, monkeypatch):
    landing.drop("a.csv", rows=2)
    landing.drop("b.csv", rows=5)
    env = {"WORKBOOK_LANDING_URL": landing.url, "WORKBOOK_WATCHER_STATE": str(tmp_path / "w.json"),
           "WORKBOOK_POLL_INTERVAL": "0.01"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    watchers = [w for a in assets_in(getattr(load_dag("ex11_5_landing_zone").timetable, "asset_condition", None))
                for w in a.watchers]
    assert watchers, "ex11_5_landing_zone: expected its asset to have an AssetWatcher"
    # What the triggerer and the scheduler do: the watcher's events become the run's asset events. A manual
    # run names the same keys in its conf.
    keys = [event["key"] for event in asyncio.run(take_events(watchers[0].trigger, 2))]
    result = run_dag("ex11_5_landing_zone", env=env, conf={"keys": keys}).assert_success()
    rows = result.xcoms.get("load_new_objects")
    expected = {landing.url + "a.csv": 2, landing.url + "b.csv": 5}
    assert rows == expected, f"load_new_objects with the watcher's keys: expected {expected!r}, got {rows!r}"

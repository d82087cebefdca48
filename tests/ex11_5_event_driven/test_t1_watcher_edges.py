"""Task 1 at its edges: the signature's defaults, hidden files under any pattern, a state folder that does
not exist yet, objects that disappear, and an idle watcher that waits instead of spinning."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.ex11_5_event_driven import probes
from tests.ex11_5_event_driven.conftest import no_event, take_events
from tests.harness import roundtrip
from tests.harness.remote import subject_module

TEAM_MODULE = "tests.ex11_5_event_driven.team_triggers"


@pytest.mark.criterion("ex11_5.t1.serialize_roundtrip")
def test_a_subclass_serializes_its_own_classpath(event_driven, landing, tmp_path):
    # A team's subclass, importable from its module as the triggerer would import it.
    teams = subject_module(TEAM_MODULE)
    team = teams.TeamNewObjectTrigger
    trigger = team(prefix=landing.url, state_path=str(tmp_path / "s.json"))
    classpath, _ = trigger.serialize()
    assert classpath == f"{TEAM_MODULE}.TeamNewObjectTrigger", (
        f"serialize() of a subclass of NewObjectTrigger: expected its own classpath (derived from the class), "
        f"got {classpath!r}")
    rebuilt = roundtrip(trigger)
    assert probes.class_of(rebuilt) is team, (
        f"rebuilt from its classpath: expected TeamNewObjectTrigger, got {probes.class_of(rebuilt)!r}")


@pytest.mark.criterion("ex11_5.t1.serialize_roundtrip")
def test_the_defaults_are_every_name_and_a_minute(event_driven, landing, tmp_path):
    trigger = event_driven.NewObjectTrigger(prefix=landing.url, state_path=str(tmp_path / "s.json"))
    _, kwargs = trigger.serialize()
    got = {k: kwargs.get(k) for k in ("pattern", "poll_interval")}
    assert got == {"pattern": "*", "poll_interval": 60.0}, (
        f"NewObjectTrigger(prefix, state_path) without pattern or poll_interval: expected serialize() to carry "
        f"the defaults pattern='*', poll_interval=60.0, got {kwargs!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.one_event_per_object")
async def test_hidden_files_are_skipped_under_any_pattern(event_driven, landing, tmp_path):
    landing.drop_partial("a.csv")  # .a.csv.part, an upload in progress
    (landing.root / ".DS_Store").write_text("x")
    landing.drop("b.csv")
    landing.drop("c.csv")
    trigger = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*", state_path=str(tmp_path / "s.json"),
                                            poll_interval=0.01)
    events = await take_events(trigger, 2, settle=0.1)
    keys = [e.get("key") for e in events]
    expected = [landing.url + "b.csv", landing.url + "c.csv"]
    assert keys == expected, (
        f"pattern='*' over .a.csv.part, .DS_Store, b.csv and c.csv: expected events for {expected} only (names "
        f"starting with a dot are unfinished uploads or not data), got {events!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.never_twice_after_restart")
async def test_a_state_folder_that_does_not_exist_yet_is_created(event_driven, landing, tmp_path):
    state = tmp_path / "not" / "created" / "yet" / "seen.json"
    landing.drop("a.csv")

    def make():
        return event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=str(state), poll_interval=0.01)

    events = await take_events(make(), 1)
    assert [e.get("key") for e in events] == [landing.url + "a.csv"], f"first watcher: got {events!r}"
    await no_event(roundtrip(make()), within=0.15)
    assert state.parent.is_dir(), f"state_path {state}: expected its folders created, found none"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t1.one_event_per_object")
async def test_objects_that_disappear_do_not_stop_the_watch(event_driven, landing, tmp_path):
    state = str(tmp_path / "state" / "seen.json")
    a, _ = landing.drop("a.csv"), landing.drop("b.csv")
    trigger = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=state, poll_interval=0.01)
    agen = trigger.run()
    try:
        got = [(await asyncio.wait_for(anext(agen), 5)).payload.get("key") for _ in range(2)]
        assert sorted(got) == [landing.url + "a.csv", landing.url + "b.csv"], f"a.csv and b.csv: got {got}"
        a.unlink()  # processed and cleaned up by the upstream system
        pending = asyncio.ensure_future(anext(agen))
        done, _ = await asyncio.wait([pending], timeout=0.15)
        assert not done, f"a.csv deleted, nothing new: expected no event, got {pending.result().payload!r}"
        landing.drop("c.csv")
        payload = (await asyncio.wait_for(pending, 5)).payload
        assert payload.get("key") == landing.url + "c.csv", f"c.csv dropped after a.csv was deleted: got {payload!r}"
    finally:
        await agen.aclose()
    rebuilt = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=state, poll_interval=0.01)
    await no_event(roundtrip(rebuilt), within=0.15)


@pytest.mark.criterion("ex11_5.t1.one_event_per_object")
def test_an_idle_watcher_waits_poll_interval_between_listings(event_driven, landing, tmp_path, monkeypatch):
    landing.drop("a.csv")
    root = os.fspath(landing.root).rstrip("/")
    # The listings the learner's code makes, recorded where it runs.
    recorder = probes.call_recorder()
    trigger_os = subject_module("os")
    for name in ("scandir", "listdir"):
        monkeypatch.setattr(trigger_os, name, recorder.wrap(getattr(trigger_os, name), f"os.{name}"))

    def listings() -> list[float]:  # os.scandir() and os.listdir() without a path list the current folder
        return [call["at"] for call in recorder.calls() if (call["args"] or ["."])[0].rstrip("/") == root]

    trigger = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=str(tmp_path / "s.json"),
                                            poll_interval=0.1)

    async def watch() -> None:
        await take_events(trigger, 1)  # a.csv
        recorder.clear()
        await no_event(trigger, within=0.5)

    asyncio.run(watch())
    monkeypatch.undo()
    assert listings(), "the watcher never listed the landing folder"
    assert len(listings()) <= 3 * (0.5 / 0.1 + 2), (
        f"poll_interval=0.1, nothing new for 0.5 s: expected a listing about every 0.1 s (at most ~7 polls), got "
        f"{len(listings())} listings of {root} (sleep poll_interval when nothing was new)")

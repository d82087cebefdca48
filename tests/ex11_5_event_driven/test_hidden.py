"""Hidden criteria of Exercise 11.5 (instructors only; the learner release drops this file)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from fixtures.webhook_sender import minio_notification
from tests.ex11_5_event_driven.conftest import SECRET, TOKEN, no_event, take_events
from tests.ex11_5_event_driven.probes import call_recorder
from tests.harness.remote import subject_module


@pytest.mark.criterion("ex11_5.t1.state_written_atomically")
def test_the_state_file_is_replaced_atomically_and_a_corrupt_one_stops_firing(event_driven, landing, tmp_path, monkeypatch,
                                                                              learner_log):
    state = tmp_path / "state" / "seen.json"
    landing.drop("a.csv")
    # The renames of the learner's code, recorded where it runs.
    recorder = call_recorder()
    trigger_os = subject_module("os")
    for name in ("replace", "rename"):
        monkeypatch.setattr(trigger_os, name, recorder.wrap(getattr(trigger_os, name), f"os.{name}"))
    trigger = event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=str(state), poll_interval=0.01)
    asyncio.run(take_events(trigger, 1))
    monkeypatch.undo()
    replaced = [tuple(call["args"]) for call in recorder.calls() if len(call["args"]) == 2]
    sources = [src for src, dst in replaced if dst == str(state)]
    assert sources, (
        f"the watcher's state {state} must be written to a temp file and renamed into place (os.replace), so a "
        f"crash mid-write never leaves half a file; renames seen: {replaced}"
    )
    assert all(os.path.dirname(src) == str(state.parent) for src in sources), (
        f"the watcher's state {state} was renamed from {sources}: the temp file belongs in the same folder (a "
        f"rename is atomic only within one file system)"
    )
    landing.drop("b.csv")
    for damage, content in (("torn", '{"seen": {"file:///'), ("of another shape", '["a.csv"]')):
        state.write_text(content)  # what a non-atomic writer leaves after a crash, or another program's file
        learner_log.output()
        asyncio.run(no_event(event_driven.NewObjectTrigger(prefix=landing.url, pattern="*.csv", state_path=str(state),
                                                           poll_interval=0.01), within=0.15))
        text = "".join(learner_log.output())
        assert str(state) in text, (
            f"a {damage} state file must be logged, naming {state} (and fire nothing: re-firing everything "
            f"breaks never-twice); log was:\n{text[-1500:]}"
        )


@pytest.mark.criterion("ex11_5.t2.secrets_never_logged")
def test_secret_and_token_stay_out_of_logs(webhook, fake_airflow, learner_log):
    hook = webhook()
    fake_airflow.fail_next = 1
    hook.sender.send(minio_notification("landing/bronze/sales/a.parquet"), sign=False)
    hook.sender.send(minio_notification("landing/bronze/sales/a.parquet"))
    hook.wait_for(lambda: len(fake_airflow.deliveries) == 1, "the event delivered")
    whole_repr = subject_module("builtins").repr(hook.receiver)  # all of it (a reference's repr is shortened)
    text = "\n".join(learner_log.messages()) + "".join(learner_log.output()) + whole_repr
    for secret in (SECRET, TOKEN):
        assert secret not in text, f"{secret!r} appears in the receiver's logs or repr(): {text[-800:]}"
    assert json.dumps(fake_airflow.deliveries[0]["json"]).count(SECRET) == 0, "the secret was sent to Airflow"

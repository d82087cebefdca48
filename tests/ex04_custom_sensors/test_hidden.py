"""Exercise 4's hidden criteria: robustness a reviewer checks, not shown to learners in advance."""

from __future__ import annotations

import base64

import pytest
from airflow.sdk import PokeReturnValue

from tests.harness import make_context

TOKEN = "tok-9f8e7d6c5b4a"


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@pytest.mark.criterion("ex04.t2.no_secrets_in_logs")
@pytest.mark.parametrize("how", ["bearer_token", "headers", "basic_auth", "conn_id"])
def test_credentials_never_reach_the_log(custom_sensors, health_server, sensor_log, capfd, monkeypatch, how):
    if how == "basic_auth":
        health_server.require_basic("monitor", TOKEN)
        kwargs = {"basic_auth": ("monitor", TOKEN)}
        secrets = [TOKEN, base64.b64encode(f"monitor:{TOKEN}".encode()).decode()]
    elif how == "conn_id":
        health_server.require_basic("monitor", TOKEN)
        monkeypatch.setenv("AIRFLOW_CONN_EX04_SECRET_API",
                           f'{{"conn_type": "http", "login": "monitor", "password": "{TOKEN}"}}')
        kwargs = {"conn_id": "ex04_secret_api"}
        secrets = [TOKEN, base64.b64encode(f"monitor:{TOKEN}".encode()).decode()]
    else:
        health_server.require_bearer(TOKEN)
        kwargs = {"bearer_token": TOKEN} if how == "bearer_token" else {
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": TOKEN}}
        secrets = [TOKEN]
    sensor = custom_sensors.APIHealthSensor(endpoint_url=health_server.health_url, task_id="wait_for_api",
                                            expected_response={"status": "healthy"}, request_timeout=2, **kwargs)
    health_server.force("maintenance")
    sensor.poke(make_context(sensor))
    health_server.force("healthy")
    assert is_done(sensor.poke(make_context(sensor))), f"poke() with credentials via {how}: expected done"
    written = sensor_log.text + capfd.readouterr().out
    leaked = [s for s in secrets if s in written]
    assert not leaked, (
        f"poke() with credentials via {how}: the log must never contain them (log the headers redacted); "
        f"found {leaked} in:\n{written[-800:]}"
    )
    assert sensor_log.messages, "poke(): expected the sensor to log its requests (redacted), it logged nothing"


@pytest.mark.criterion("ex04.t4.corrupt_history_reset")
@pytest.mark.parametrize("content", ['{"attempts": [', "[1, 2, 3]", '{"%s": "not a dict"}', ""])
def test_corrupt_history_is_reset_with_a_warning(custom_sensors, tmp_path, sensor_log, content):
    target_file = tmp_path / "drop" / "export.csv"
    history = tmp_path / "state" / "history.json"
    history.parent.mkdir()
    history.write_text(content.replace("%s", str(target_file)) if "%s" in content else content)
    sensor = custom_sensors.AdaptiveFileSensor(filepath=str(target_file), history_path=str(history),
                                               initial_interval=60, min_interval=30, max_interval=300,
                                               task_id="wait_for_export")
    try:
        result = sensor.poke(make_context(sensor))
    except Exception as exc:
        pytest.fail(f"poke() with a corrupt history file ({content!r}) raised {type(exc).__name__}: {exc}; "
                    f"expected the history reset with a warning")
    assert not is_done(result), "poke() for a file that is not there: expected not done"
    attempts = custom_sensors.AdaptiveFileSensor(filepath=str(target_file), history_path=str(history),
                                                 task_id="wait_for_export").history()
    assert len(attempts) == 1 and isinstance(attempts[0], dict) and attempts[0].get("success") is False, (
        f"history() after a poke on a reset history: expected one failed attempt recorded, got {attempts!r:.300}"
    )
    if content.strip() and "not a dict" not in content:
        assert any(history.name in m for m in sensor_log.at_least("warning")), (
            f"poke() with a corrupt history file ({content!r}): expected a warning naming {history.name}, "
            f"got {sensor_log.messages}"
        )

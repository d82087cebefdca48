"""The playground in a real browser (`make playground-check`; not part of `make test`: it needs Debian's
chromium and chromium-driver, and selenium from the `browser` extra).

Starts `workbook airflow ex11_3` on free ports as a learner would, signs in to the UI with headless Chromium,
triggers `ex11_3_http_polling` with the UI's own Trigger button, watches the task instance's page say
"deferred", flips the health server with `workbook steer`, watches the same page say "success", saves a
screenshot of each, and stops the playground with Ctrl-C (SIGINT): every process it started must be gone.

    .venv/bin/pytest --target=solution tests/workbook/playground_browser_check.py [--screenshots DIR]
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import psutil
import pytest

from tests.harness.infrastructure import scaled
from tests.harness.target import REPO_ROOT

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: `make playground-check`")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
READY_TIMEOUT = 240.0  # seconds on an idle machine (scaled): a first start also migrates the template DB
STOP_TIMEOUT = 30.0  # the playground gives each Airflow process 10 s, then kills it
DAG_ID, TASK_ID = "ex11_3_http_polling", "wait_for_api"
TRIGGER_STARTED = re.compile(rf"trigger {DAG_ID}/\S+ \(ID \d+\) starting")  # the triggerer's own log line
# Every flag keeps Chromium off the network: this machine reaches no host but loopback.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-quic", "--window-size=1400,900")


@pytest.fixture
def playground(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[dict]:
    """`workbook airflow ex11_3 --free-ports` in its own state folder; its control file once it is up."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are not installed: "
                    "sudo apt-get install -y chromium chromium-driver")
    state = tmp_path / "playground"
    env = {**os.environ, "WORKBOOK_TARGET": pytestconfig.workbook_target.name}
    for name in list(env):  # the suite's own Airflow settings are not the playground's
        if name.startswith("AIRFLOW"):
            del env[name]
    output = (tmp_path / "playground.out").open("w+")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "grading", "airflow", "ex11_3", "--free-ports", "--state-dir", str(state)],
        cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    control_file = state / "control.json"
    try:
        deadline = time.monotonic() + scaled(READY_TIMEOUT)
        while not control_file.exists():
            assert process.poll() is None, f"the playground exited with {process.returncode}:\n{_read(output)}"
            assert time.monotonic() < deadline, f"the playground was not up in time:\n{_read(output)}"
            time.sleep(0.5)
        control = json.loads(control_file.read_text())
        control |= {"process": process, "state": state, "output": output,
                    "started_in": time.monotonic() - started}
        yield control
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        output.close()


def _read(output) -> str:
    output.flush()
    output.seek(0)
    return output.read()[-4000:]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    # The driver's path is given: selenium's own driver manager (which downloads) never runs.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_state(what: str, read_state, wanted: str, timeout: float) -> None:
    """Until `read_state()` is `wanted`; a failure names the last state seen (a failed task is not a slow one)."""
    seen: list[str | None] = []

    def reached() -> bool:
        seen.append(read_state())
        return seen[-1] == wanted

    try:
        wait_until(f"{what} {wanted}", reached, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; last state seen: {seen[-1] if seen else None!r}") from None


def wait_until(what: str, check, timeout: float, driver=None):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except WebDriverException:
            pass  # the page is still rendering: the element is not there yet
        time.sleep(0.5)
    detail = f"\npage text:\n{driver.find_element(By.TAG_NAME, 'body').text[:2000]}" if driver else ""
    raise AssertionError(f"{what}: not within {scaled(timeout):.0f} s{detail}")


def api_state(control: dict, path: str) -> str | None:
    """A run's or task instance's state through the REST API the UI itself calls."""
    token = httpx.post(f"{control['ui_url']}/auth/token", json={"username": "admin", "password": "admin"},
                       timeout=30).json()["access_token"]
    answer = httpx.get(f"{control['ui_url']}/api/v2/dags/{DAG_ID}/dagRuns/{quote(path)}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return answer.json().get("state") if answer.is_success else None


def task_state(control: dict, run_id: str) -> str | None:
    return api_state(control, f"{run_id}/taskInstances/{TASK_ID}")


def run_state(control: dict, run_id: str) -> str | None:
    return api_state(control, run_id)


def page_state(driver: webdriver.Chrome, wanted: str) -> bool:
    """The task instance page names its state (a badge such as "deferred" or "success")."""
    text = driver.find_element(By.TAG_NAME, "body").text.lower()
    return re.search(rf"\b{wanted}\b", text) is not None


@pytest.mark.timeout(900)  # a start that migrates, a browser, two waits and a stop, on a loaded machine
def test_a_deferred_task_finishes_in_the_ui(playground: dict, browser: webdriver.Chrome) -> None:
    url = playground["ui_url"]
    shots = Path(os.environ.get("WORKBOOK_SCREENSHOTS") or playground["state"])
    shots.mkdir(parents=True, exist_ok=True)
    descendants = psutil.Process(playground["process"].pid).children(recursive=True)
    assert len(descendants) >= 4, f"the api-server, scheduler, dag-processor and triggerer: {descendants}"

    # Sign in as the playground's banner tells a learner to.
    browser.get(url)
    wait_until("the login form", lambda: browser.find_elements(By.NAME, "username"), 60, browser)
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    wait_until("signed in", lambda: "/auth/login" not in browser.current_url, 60, browser)

    # Trigger the DAG with the UI's own button and dialog.
    browser.get(f"{url}/dags/{DAG_ID}")
    trigger = wait_until("the Trigger button", lambda: browser.find_elements(
        By.CSS_SELECTOR, "button[aria-label='Trigger Dag']"), 60, browser)
    trigger[0].click()
    confirm = wait_until("the trigger dialog", lambda: browser.find_elements(
        By.XPATH, "//*[@role='dialog']//button[normalize-space()='Trigger']"), 30, browser)
    confirm[0].click()
    run_id = wait_until("the new run in the grid", lambda: _run_id(browser, url), 60, browser)

    # Deferred: in the API the UI reads, and on the task instance's own page.
    wait_for_state(TASK_ID, lambda: task_state(playground, run_id), "deferred", 90)
    browser.get(f"{url}/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/{TASK_ID}")
    wait_until("the page saying deferred", lambda: page_state(browser, "deferred"), 60, browser)
    # The task's log, shown on the same page, carries the triggerer's own lines once it has the trigger.
    wait_until("the triggerer's lines in the task log", lambda: TRIGGER_STARTED.search(
        browser.find_element(By.TAG_NAME, "body").text), 60, browser)
    browser.save_screenshot(str(shots / "playground-deferred.png"))

    # Flip the health server from a second "terminal", as the banner says.
    steer = subprocess.run([sys.executable, "-m", "grading", "steer", "--state-dir", str(playground["state"]),
                            "health", "healthy"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert steer.returncode == 0, steer.stderr
    wait_for_state(TASK_ID, lambda: task_state(playground, run_id), "success", 90)
    wait_for_state("the run", lambda: run_state(playground, run_id), "success", 90)
    browser.get(f"{url}/dags/{DAG_ID}/runs/{quote(run_id)}")
    wait_until("the run page saying success", lambda: page_state(browser, "success"), 60, browser)
    browser.save_screenshot(str(shots / "playground-success.png"))

    # Ctrl-C stops everything it started.
    process: subprocess.Popen = playground["process"]
    stopping = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STOP_TIMEOUT) == 0, _read(playground["output"])
    left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after Ctrl-C: {[p.cmdline() for p in left]}"
    print(f"\nplayground up in {playground['started_in']:.0f} s (Airflow healthy after "
          f"{playground['ready_seconds']:.0f} s), stopped in {time.monotonic() - stopping:.1f} s; "
          f"screenshots in {shots}")


def _run_id(driver: webdriver.Chrome, url: str) -> str | None:
    """The run the dialog made: the UI opens its page (…/runs/<run id>)."""
    match = re.search(rf"/dags/{DAG_ID}/runs/([^/?#]+)", driver.current_url)
    return unquote(match[1]) if match else None

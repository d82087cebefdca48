"""An isolated Airflow installation per test session: its own AIRFLOW_HOME in the temp dir, examples off,
the target's DAG folder, and an embedded SQLite metadata DB copied from a template migrated once.

Everything here must run before `airflow` is imported: Airflow reads its configuration at import time.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from tests.harness.target import REPO_ROOT, Target

CACHE_DIR = REPO_ROOT / ".cache"


def airflow_env(home: Path, target: Target) -> dict[str, str]:
    """The environment a process of this session's Airflow needs (tests, subprocesses, real Airflow processes)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(target.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|starters|solutions|fixtures)\..*",
        # The triggerer imports trigger classpaths from sys.path, never from the DAG folder.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "WORKBOOK_TARGET": target.name,
    }


def configure(target: Target) -> Path:
    """Create this session's AIRFLOW_HOME and export its settings; returns the home."""
    home = Path(tempfile.mkdtemp(prefix=f"workbook-airflow-{target.name}-"))
    os.environ.update(airflow_env(home, target))
    return home


def _template_db() -> Path:
    """A metadata DB migrated once per Airflow version and reused by every later session."""
    folder = CACHE_DIR / f"airflow-db-{version('apache-airflow')}"
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "airflow.db"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            work = folder / "migrating"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(work),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow.db'}",
            }
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env, capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"`airflow db migrate` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            os.replace(work / "airflow.db", template)
            shutil.rmtree(work, ignore_errors=True)
    return template


def ensure_metadata_db(home: Path) -> Path:
    """Give this session's home a migrated metadata DB (copied from the template)."""
    db = home / "airflow.db"
    if not db.exists() or db.stat().st_size == 0:
        tmp = db.with_suffix(".copying")
        shutil.copyfile(_template_db(), tmp)
        os.replace(tmp, db)
        # A connection opened before the copy (importing Airflow may open one) still sees the empty file.
        settings = sys.modules.get("airflow.settings")
        if settings is not None and getattr(settings, "engine", None) is not None:
            settings.engine.dispose()
    return db

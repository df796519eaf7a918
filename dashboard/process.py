"""The dashboard process: ``streamlit run dashboard/app.py``, headless, with our settings.

The Streamlit server runs as a child process. Every setting reaches it through the
environment: one ``DRIFTLOOP_<FIELD>`` variable per top-level field (a whole section as JSON,
secrets in clear, for that child only), so the child's ``Settings()`` equals the parent's.
The parent's own ``DRIFTLOOP_*`` variables are dropped so they cannot override them.
The Streamlit process ends with ``driftloop dashboard``, even when that is killed
(:func:`streams.lifetime.die_with_parent`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, SecretStr

from dashboard.context import reveal
from streams.errors import ConfigError
from streams.lifetime import die_with_parent
from streams.settings import Settings

log = logging.getLogger(__name__)

APP = Path(__file__).with_name("app.py")
ENV_PREFIX = "DRIFTLOOP_"


def settings_env(settings: Settings) -> dict[str, str]:
    """``DRIFTLOOP_*`` variables from which ``Settings()`` rebuilds ``settings`` exactly."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        key = f"{ENV_PREFIX}{name.upper()}"
        if isinstance(value, BaseModel):
            env[key] = json.dumps(value.model_dump(mode="python"), default=reveal)
        elif isinstance(value, tuple | list | dict):
            env[key] = json.dumps(value, default=reveal)
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        else:
            env[key] = str(value)
    return env


def child_env(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """The Streamlit process's environment: ``inherited`` without DRIFTLOOP_*, plus ours."""
    env = {k: v for k, v in inherited.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    # The app imports the ``dashboard`` package; make sure the child finds it.
    root = str(APP.parent.parent)
    env["PYTHONPATH"] = f"{root}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else root
    return env


def streamlit_command(settings: Settings) -> list[str]:
    config = settings.dashboard
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless=true",
        f"--server.port={config.port}",
        f"--server.address={config.address}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        "--theme.base=light",
    ]


def run_dashboard(
    settings: Settings,
    *,
    environ: Mapping[str, str],
    stop: threading.Event | None = None,
    cwd: Path | None = None,
) -> int:
    """Serve the dashboard until the Streamlit process ends or ``stop`` is set.

    Returns Streamlit's exit status (0 after a requested stop).
    """
    command = streamlit_command(settings)
    log.info("starting the dashboard", extra={"port": settings.dashboard.port,
                                              "address": settings.dashboard.address})
    try:
        child = subprocess.Popen(  # noqa: S603 - the command is built here, not from input
            command, env=child_env(settings, environ), cwd=cwd,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - the dashboard starts no threads
        )
    except OSError as exc:
        raise ConfigError(f"cannot start Streamlit: {exc}") from exc
    stop = stop or threading.Event()
    try:
        while child.poll() is None:
            if stop.wait(0.5):
                break
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    code = child.returncode
    return 0 if stop.is_set() else int(code)

"""The dashboard in a real browser: ``driftloop dashboard`` against Tansu and a real database.

Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright: a visitor can look but
not act; alice signs in, corrects a prediction's label, and the correction is then found on
the feedback topic, stored the way the monitor stores feedback, and shown in the table; she
promotes a version too. Screenshots of every page go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboard.auth import hash_password
from dashboard.process import settings_env
from retrain.registry import Registry
from streams.codec import Decoder
from streams.events import Feedback, ModelUpdate
from streams.settings import (
    DashboardSettings,
    DatabaseSettings,
    MonitorSettings,
    RetrainSettings,
)
from streams.store import EventStore, FeedbackRow
from streams.topics import Topic
from tests.dashboard.seed import (
    CHURN,
    seed_monitor,
    seed_retraining,
    seed_schedules,
    seed_streams,
)
from tests.streams.kafka_helpers import read_all

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PAGES = ("Overview", "Drift", "Models", "Jobs", "Feedback")
ALICE = ("alice", "wonderland")
TARGET = "c039"  # predicted "leave", no label yet
REFRESH_S = 2.0

pytestmark = pytest.mark.slow
#: One database for the browser (the query layer is tested on both): PostgreSQL when there is one.
BROWSER_DATABASE = "postgresql" if os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL") else "sqlite"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return str(CHROMIUM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the dashboard did not answer within {timeout_s}s:\n{log.read_text()}")


@pytest.fixture
def dashboard_server(tansu, deployment_factory, database, live_now, tmp_path):
    """``driftloop dashboard`` in a child process, on a seeded database; yields (url, dep)."""
    seed_streams(database, live_now)
    seed_retraining(database, live_now)
    seed_monitor(database, live_now)
    seed_schedules(database, {CHURN: 3600})
    dep = deployment_factory(tansu, partitions=1)
    users = {ALICE[0]: SecretStr(hash_password(ALICE[1], iterations=1_000))}
    port = _free_port()
    settings = dep.settings.model_copy(update={
        "database": DatabaseSettings(url=SecretStr(database.url)),
        "dashboard": DashboardSettings(users=users, refresh_s=REFRESH_S, port=port),
        "monitor": MonitorSettings(drift_share_threshold=0.3),
        "retrain": RetrainSettings(schedules={CHURN: 3600}),
    })
    settings = settings.model_copy(update={
        "monitor": settings.monitor.model_copy(update={"drift_workers": "thread"})})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(settings_env(settings))
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "driftloop.cli", "dashboard"], env=env,
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, dep, env
    finally:
        # SIGTERM to the CLI alone: it must stop its Streamlit child and exit cleanly.
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the dashboard did not stop on SIGTERM:\n{log.read_text()}")
        assert code == 0, log.read_text()
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "Streamlit still listens"


def _settle(page) -> None:
    """Wait until Streamlit finished the current run (its status widget is gone)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
    page.wait_for_timeout(400)


def _open(page, name: str) -> None:
    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=30_000)
    _settle(page)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _stored(database, event_id: str) -> bool:
    return event_id in {r.event_id for r in _feedback_rows(database)}


def _run_the_monitor_until_stored(env, database, event_id: str, log: Path) -> None:
    """``driftloop monitor`` in a child process, stopped with SIGTERM once the event is stored."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "driftloop.cli", "monitor"], env=env,
                                cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _stored(database, event_id):
            if proc.poll() is not None:
                pytest.fail(f"driftloop monitor exited with {proc.returncode}:\n"
                            f"{log.read_text()}")
            time.sleep(0.5)
        assert _stored(database, event_id), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _feedback_rows(database) -> list[FeedbackRow]:
    from sqlalchemy import select

    with database.session() as session:
        return list(session.execute(select(FeedbackRow).where(
            FeedbackRow.request_id == TARGET)).scalars())


@pytest.mark.parametrize("database_url", [BROWSER_DATABASE], indirect=True)
def test_a_reviewer_corrects_a_label_in_a_real_browser(dashboard_server, database,
                                                       chromium_path, request, tmp_path):
    url, dep, env = dashboard_server
    tag = request.node.callspec.id.replace("-", "_")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            page.goto(url)
            page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
            _settle(page)

            # A visitor sees everything but can change nothing.
            _open(page, "Feedback")
            playwright.expect(page.get_by_text("Sign in to correct labels.")).to_be_visible()
            assert page.get_by_role("button", name="Send correction").count() == 0
            assert page.get_by_label("Prediction (model/request id)").count() == 0
            _shot(page, f"{tag}-visitor-feedback")
            _open(page, "Models")
            playwright.expect(page.get_by_text("Sign in to promote or roll back.")).to_be_visible()
            assert page.get_by_role("button", name="Promote").count() == 0
            assert page.get_by_role("button", name="Roll back").count() == 0

            page.get_by_label("User name").fill(ALICE[0])
            page.get_by_role("textbox", name="Password").fill(ALICE[1])
            page.get_by_role("button", name="Sign in").click()
            playwright.expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
            _settle(page)
            for name in PAGES:
                _open(page, name)
                _shot(page, f"{tag}-{name.lower()}")
                if name == "Drift":  # its data quality, and the newest window's full report
                    playwright.expect(page.get_by_text(
                        "In the latest window: plan (40% null")).to_be_visible()
                    playwright.expect(page.get_by_text("Data quality of the latest window")
                                      ).to_be_visible()
                    page.get_by_text("Show the report").click()
                    report = page.frame_locator("iframe").first
                    playwright.expect(report.get_by_text("tenure").first).to_be_visible(
                        timeout=60_000)
                    _settle(page)
                    _shot(page, f"{tag}-drift-report")

            # Correct one prediction (the Feedback page is open).
            target = page.get_by_label("Prediction (model/request id)")
            target.click()
            page.keyboard.type(f"{CHURN}/{TARGET}")
            page.keyboard.press("Enter")
            page.get_by_label("Right label").fill("stay")
            page.get_by_role("button", name="Send correction").click()
            playwright.expect(page.get_by_text("Sent 1 correction")).to_be_visible(
                timeout=30_000)
            _settle(page)
            playwright.expect(page.locator('[role="gridcell"]',
                                           has_text="waiting for the monitor").first
                              ).to_be_attached()

            # On the feedback topic, from alice, as a reviewer.
            decoder = Decoder(Feedback, max_bytes=1_000_000)
            events = [decoder.decode(m.value) for m in
                      read_all(dep.broker.bootstrap, dep.names(Topic.FEEDBACK), expect=1)]
            assert [(e.request_id, e.label, e.source, e.reviewer) for e in events] == [
                (TARGET, "stay", "reviewer", "alice")]

            # Stored by the monitor, then shown in the table.
            _run_the_monitor_until_stored(env, database, events[0].event_id,
                                          tmp_path / "monitor.log")
            example = EventStore(database).example(CHURN, TARGET)
            assert (example.label, example.label_source) == ("stay", "reviewer")
            (row,) = _feedback_rows(database)
            assert (row.label, row.source, row.reviewer) == ("stay", "reviewer", "alice")
            # Auto-refresh turns "waiting for the monitor" into "stored" by itself...
            playwright.expect(page.locator('[role="gridcell"]', has_text="stored").first
                              ).to_be_attached(timeout=10 * REFRESH_S * 1000)
            # ...and the table shows the new label once reloaded.
            page.get_by_role("button", name="Reload").click()
            _settle(page)
            playwright.expect(page.locator('[role="gridcell"]', has_text="alice").first
                              ).to_be_attached(timeout=30_000)
            _shot(page, f"{tag}-feedback-corrected")

            # Promote v4 with a reason and the confirmation.
            _open(page, "Models")
            page.get_by_label("Reason (required)").first.fill("better on fresh data")
            page.get_by_text("Serving processes will swap churn to this version").click()
            page.get_by_role("button", name="Promote").click()
            playwright.expect(page.get_by_text("Promoted churn v4")).to_be_visible(
                timeout=30_000)
            _settle(page)
            _shot(page, f"{tag}-models-promoted")
        finally:
            browser.close()
    assert Registry(database).champion(CHURN).version == 4
    updates = Decoder(ModelUpdate, max_bytes=1_000_000)
    (promoted,) = [updates.decode(m.value) for m in
                   read_all(dep.broker.bootstrap, dep.names(Topic.MODEL_UPDATES), expect=1)]
    assert (promoted.version, promoted.actor, promoted.reason) == (
        4, "alice", "better on fresh data")

"""Running the dashboard under streamlit.testing's AppTest with a given Settings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.process import settings_env
from streams.settings import Settings

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGES = ("overview", "drift", "models", "jobs", "feedback")


def start(monkeypatch: pytest.MonkeyPatch, settings: Settings, page: str | None = None,
          user: tuple[str, str] | None = None) -> AppTest:
    """The app as a fresh browser session sees it; signed in as ``user`` when given."""
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    if user is not None:
        sign_in(at, *user)
    if page is not None:
        open_page(at, page)
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_user").input(name)
    at.text_input(key="sign_in_password").input(password)
    at.form_submit_button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Everything the page says in markdown, captions, alerts and metrics, as one string."""
    parts = [e.value for e in (*at.markdown, *at.caption, *at.title, *at.header,
                               *at.subheader, *at.info, *at.warning, *at.error, *at.success)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table (dataframe or editor) on the page that has all these columns."""
    for element in at.dataframe:
        value = element.value
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def charts(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    """Every Vega-Lite (Altair) chart on the page: its spec and its datasets."""
    from streamlit import dataframe_util

    found = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto  # type: ignore[attr-defined]
        data = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)
                for d in proto.datasets]
        found.append((json.loads(proto.spec), data))
    return found


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]

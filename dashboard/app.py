"""The Streamlit entry point: ``streamlit run dashboard/app.py`` (``driftloop dashboard``).

Settings come from the DRIFTLOOP_* environment, which ``driftloop dashboard`` fills in for
the Streamlit process. Pages live in ``dashboard/views`` (not ``pages/``, which Streamlit
would pick up on its own).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import session
from streams.errors import StoreError

VIEWS = Path(__file__).with_name("views")

PAGES = (
    ("overview.py", "Overview", ":material/monitoring:"),
    ("drift.py", "Drift", ":material/waves:"),
    ("models.py", "Models", ":material/deployed_code:"),
    ("jobs.py", "Jobs", ":material/schedule:"),
    ("feedback.py", "Feedback", ":material/rate_review:"),
)


def _locked() -> None:
    st.title("driftloop")
    st.info("Sign in (in the sidebar) to view the dashboard.")


def main() -> None:
    st.set_page_config(page_title="driftloop", page_icon=":material/loop:", layout="wide")
    dash = session.dashboard()
    user = session.current_user(dash)
    session.sign_in_panel(dash, user)
    if not dash.access.can_view(user):
        st.navigation([st.Page(_locked, title="Sign in", url_path="sign-in")]).run()
        return
    pages = [
        st.Page(VIEWS / name, title=title, icon=icon, default=(i == 0))
        for i, (name, title, icon) in enumerate(PAGES)
    ]
    try:
        st.navigation(pages).run()
    except StoreError as exc:  # outside a page's refreshing body (those say it themselves)
        if not exc.transient:
            raise
        session.database_unreachable(exc)


main()

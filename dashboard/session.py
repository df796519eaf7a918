"""Streamlit glue shared by every page: the cached dashboard, the signed-in user, auto-refresh.

A password sign-in lives in the browser session's state (a reload signs out). Streamlit's
OpenID Connect login, when ``dashboard.oidc_provider`` is set, is kept in Streamlit's own
cookie and read from ``st.user``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import streamlit as st

from dashboard.auth import User
from dashboard.context import Dashboard, settings_fingerprint
from streams import logs
from streams.errors import StoreError
from streams.settings import Settings

log = logging.getLogger(__name__)

USER_KEY = "driftloop_user"
_SIGN_IN_ERROR = "driftloop_sign_in_error"

F = TypeVar("F", bound=Callable[..., Any])


@st.cache_resource(show_spinner=False)
def _settings() -> Settings:
    settings = Settings()
    if not logging.getLogger().handlers:
        # The Streamlit process logs like every driftloop process, secrets redacted; where
        # something else set logging up already (a test runner), that stays.
        logs.configure(settings.log_level, secrets=settings.secret_values())
    return settings


@st.cache_resource(show_spinner=False)
def _dashboard(_fingerprint: str, _settings: Settings) -> Dashboard:
    return Dashboard(_settings)


def dashboard() -> Dashboard:
    """The process's dashboard, built once from the DRIFTLOOP_* environment."""
    settings = _settings()
    return _dashboard(settings_fingerprint(settings), settings)


def _oidc_user(dash: Dashboard) -> User | None:
    config = dash.settings.dashboard
    if config.oidc_provider is None:
        return None
    try:
        if not st.user.is_logged_in:
            return None
        email = st.user.get("email")
        name = email or st.user.get("name") or st.user.get("sub")
    except Exception:  # Streamlit raises when [auth] is not configured.
        log.warning("OIDC is configured in settings but not in .streamlit/secrets.toml")
        return None
    if not name:
        return None
    if config.oidc_allowed and email not in config.oidc_allowed:
        return None
    return User(str(name), method="oidc")


def current_user(dash: Dashboard) -> User | None:
    """Who is signed in to this browser session, if anyone."""
    user = st.session_state.get(USER_KEY)
    if isinstance(user, User):
        return user
    return _oidc_user(dash)


def _client_address() -> str | None:
    """The browser's address as Streamlit sees it: a proxy's behind one, and None for a
    local connection (Streamlit gives no address for those), so that every browser on the
    dashboard's own machine counts as one client for the sign-in lockout."""
    try:
        address = st.context.ip_address
    except Exception:  # no request context
        return None
    return address if isinstance(address, str) else None  # AppTest gives a mock


def _sign_in(dash: Dashboard) -> None:
    name = str(st.session_state.get("sign_in_user", ""))
    password = str(st.session_state.get("sign_in_password", ""))
    st.session_state["sign_in_password"] = ""
    attempt = dash.sign_in.attempt(name, password, _client_address())
    if attempt.user is None:
        st.session_state[_SIGN_IN_ERROR] = attempt.message
        return
    st.session_state[USER_KEY] = attempt.user
    st.session_state.pop(_SIGN_IN_ERROR, None)


def _sign_out(dash: Dashboard, user: User) -> None:
    st.session_state.pop(USER_KEY, None)
    dash.audit.record(user.name, "sign_out")
    if user.method == "oidc":
        st.logout()


def sign_in_panel(dash: Dashboard, user: User | None) -> None:
    """The sidebar's sign-in form, or who is signed in and a sign-out button."""
    with st.sidebar:
        if user is not None:
            st.markdown(f"Signed in as **{user.name}**")
            st.button("Sign out", key="sign_out", on_click=_sign_out, args=(dash, user))
            return
        provider = dash.settings.dashboard.oidc_provider
        if dash.passwords.enabled:
            with st.form("sign_in_form", clear_on_submit=False):
                st.text_input("User name", key="sign_in_user")
                st.text_input("Password", type="password", key="sign_in_password")
                st.form_submit_button("Sign in", on_click=_sign_in, args=(dash,))
            error = st.session_state.get(_SIGN_IN_ERROR)
            if error:
                st.error(error)
        if provider is not None:
            arg = None if provider == "default" else provider
            st.button("Sign in with single sign-on", key="oidc_sign_in", on_click=st.login,
                      args=(arg,))
        if not dash.passwords.enabled and provider is None:
            st.caption("No users are configured: the dashboard is read-only.")
        else:
            st.caption("Sign in to correct labels, promote or roll back.")


def auto_refresh(dash: Dashboard) -> Callable[[F], F]:
    """A decorator that reruns a page's body every ``dashboard.refresh_s`` seconds.

    While the database cannot be reached the body says so instead of failing, and shows its
    data again at the first refresh after the database is back.
    """
    every = dash.settings.dashboard.refresh_s
    fragment = st.fragment(run_every=every) if every > 0 else st.fragment

    def decorate(body: F) -> F:
        @functools.wraps(body)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return body(*args, **kwargs)
            except StoreError as exc:
                if not exc.transient:
                    raise
                database_unreachable(exc, every)
                return None

        return cast(F, fragment(guarded))

    return decorate


def database_unreachable(exc: StoreError, refresh_s: float = 0.0) -> None:
    """Say on the page that the database is down (a passing outage, not a bug)."""
    log.warning("the dashboard cannot reach the database", extra={"error": str(exc)})
    again = (f"this page tries again every {refresh_s:g} s" if refresh_s > 0
             else "reload the page to try again")
    st.warning(f"The database cannot be reached right now; {again}.",
               icon=":material/cloud_off:")


def page_context() -> tuple[Dashboard, User | None]:
    dash = dashboard()
    return dash, current_user(dash)

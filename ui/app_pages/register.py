"""Register: an email, a password of 12+ characters (not the email), typed twice."""

from __future__ import annotations

import streamlit as st

from orca_flows.services.auth import REGISTERED_MESSAGE, register
from orca_flows.services.users import MIN_PASSWORD_LENGTH
from ui.forms import FieldErrors
from ui.session import client_address, orca_settings

st.title("Create an Orca account")

errors = FieldErrors("register")
with st.form("register"):
    with errors.field("email"):
        email = st.text_input("Email", autocomplete="email")
    with errors.field("password"):
        password = st.text_input(
            "Password",
            type="password",
            autocomplete="new-password",
            help=f"At least {MIN_PASSWORD_LENGTH} characters, and not your email address.",
        )
    with errors.field("confirmation"):
        confirmation = st.text_input(
            "Confirm password", type="password", autocomplete="new-password"
        )
    submitted = st.form_submit_button("Register", type="primary")
    errors.general()

if submitted:
    with errors.catch():
        settings = orca_settings()
        register(settings, email, password, confirmation, client_address=client_address(settings))
        # The same words whether the email was new or had an account (no enumeration).
        st.success(REGISTERED_MESSAGE)

st.page_link("app_pages/login.py", label="Already registered? Log in", icon=":material/login:")

"""Login: email and password; every refusal reads the same."""

from __future__ import annotations

import streamlit as st

from orca_flows.errors import OrcaError
from orca_flows.services.auth import authenticate
from ui.session import client_address, orca_settings, sign_in

st.title("Log in to Orca")

with st.form("login"):
    email = st.text_input("Email", autocomplete="email")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    try:
        settings = orca_settings()
        actor = authenticate(settings, email, password, client_address=client_address(settings))
    except OrcaError as error:
        st.error(str(error))
    else:
        sign_in(actor)
        st.rerun()  # the router now offers the work pages

st.page_link(
    "app_pages/register.py", label="No account yet? Register", icon=":material/person_add:"
)

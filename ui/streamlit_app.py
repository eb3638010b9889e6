"""Orca's web app: the router. Signed-out visitors see Login and Register only."""

from __future__ import annotations

import streamlit as st

from ui.session import signed_in

st.set_page_config(page_title="Orca", page_icon="🐋", layout="wide")


user = signed_in()
if user is None:
    pages: list[st.Page] | dict[str, list[st.Page]] = [
        st.Page("app_pages/login.py", title="Login", icon=":material/login:", default=True),
        st.Page("app_pages/register.py", title="Register", icon=":material/person_add:"),
    ]
else:
    pages = {
        "Runs": [
            st.Page(
                "app_pages/task_summary.py",
                title="Task Summary",
                icon=":material/list:",
                default=True,
            ),
            st.Page(
                "app_pages/task_overview.py", title="Task Overview", icon=":material/visibility:"
            ),
        ],
        "Pipelines": [
            st.Page("app_pages/script_upload.py", title="Script Upload", icon=":material/upload:"),
            st.Page(
                "app_pages/task_scheduling.py", title="Task Scheduling", icon=":material/schedule:"
            ),
        ],
        "Account": [
            st.Page("app_pages/cloud_setup.py", title="Cloud Setup", icon=":material/cloud:"),
            st.Page("app_pages/logout.py", title="Logout", icon=":material/logout:"),
        ],
    }
    st.sidebar.caption(f"Signed in as **{user.email}**")

st.navigation(pages).run()

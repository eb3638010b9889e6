"""Logout: forget the signed-in user; the router then offers Login and Register again."""

import streamlit as st

from ui.session import sign_out

sign_out()
st.rerun()

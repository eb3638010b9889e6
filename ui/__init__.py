"""Orca's Streamlit web app: a router and one file per page; pages call services only."""

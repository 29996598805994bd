"""Streamlit-side helpers shared by the pages (kdcore stays free of streamlit)."""

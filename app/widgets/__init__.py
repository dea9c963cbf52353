"""Shared widgets: image views with a scale bar, plots, the VisPy volume view."""

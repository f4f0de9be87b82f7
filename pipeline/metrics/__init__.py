"""Metrics of generated images against real ones."""

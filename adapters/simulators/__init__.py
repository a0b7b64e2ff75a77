"""Simulators of each carrier's API, for the demo and the adapter tests (Flask app factories)."""

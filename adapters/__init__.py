"""Carrier adapters: one interface (base.py), one registry (registry.py), one module per carrier.

Nothing here does work at import time; adapters are built by the registry from a config.
"""

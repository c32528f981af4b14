"""Suite-wide pytest configuration: the real-service fixtures live in ``tests/services.py``."""

pytest_plugins = ["tests.services", "tailguard.observe.pytest_plugin"]

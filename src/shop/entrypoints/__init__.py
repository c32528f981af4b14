"""The shop's entrypoints: the FastAPI app and the ``shop`` command (the only FastAPI users)."""

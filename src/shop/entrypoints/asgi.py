"""``shop.entrypoints.asgi:app``: the app built from the environment, for uvicorn's workers
(``shop serve --workers N`` prepares the database once before starting them)."""

from shop.entrypoints.app import create_app

app = create_app(prepare=False)

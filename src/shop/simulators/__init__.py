"""Simulators of the shop's external services: a payment gateway and a recommender.

Small Starlette apps whose latency, failures, hangs and slowness are set by a ``Behaviour``,
changeable at run time through ``PUT /admin/behaviour``. The shop starts them inside its own
process by default (``serve_in_background``); ``python -m shop.simulators`` serves one alone.
"""

from .behaviour import Behaviour, parse_behaviour
from .payments import create_payments_app
from .recommendations import create_recommendations_app
from .server import RunningServer, serve_in_background

__all__ = [
    "Behaviour",
    "RunningServer",
    "create_payments_app",
    "create_recommendations_app",
    "parse_behaviour",
    "serve_in_background",
]

"""The whole shop on one host: HAProxy in front of N ``shop serve`` instances, the event worker,
the payment and recommender simulators, run by supervisord, against PostgreSQL and Redis.

``python -m shop.deploy up | down | status`` (``make stack``), or from Python::

    from shop.deploy import Stack, StackConfig

    with Stack(StackConfig(instances=3, balance="leastconn")) as stack:
        print(stack.url, stack.instance_urls, stack.stats_url)
"""

from shop.deploy.config import BALANCES, Balance, StackConfig, StackError
from shop.deploy.launcher import Stack

__all__ = ["BALANCES", "Balance", "Stack", "StackConfig", "StackError"]

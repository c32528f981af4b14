"""The lab: the demo's experiments, each practice of the guide against its naive twin.

It sits above both the toolkit and the shop (it imports both; neither imports it). One module per
practice in ``lab.experiments`` shares one runner (``lab.runner``); the ledger (``lab.ledger``)
collects a row per practice and writes it as JSON and HTML. ``tailguard demo`` (or ``python -m
lab``) runs it all; ``make demo`` is what the README shows.
"""

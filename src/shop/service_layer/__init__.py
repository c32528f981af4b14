"""The shop's use cases: a unit of work, handlers per command, and the read views."""

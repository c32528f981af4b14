"""Which hosts a load may go to: loopback, or a host the user names.

A load generator pointed at someone else's server by a typo is an attack, so a target must be
loopback (127.0.0.0/8, ::1, ``localhost``) unless its host is named in ``allow_hosts`` (the
CLI's ``--allow-host``). Only plain ``http://`` URLs are loaded.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Sequence

from tailguard.errors import ConfigurationError

__all__ = ["Target", "check_host", "is_loopback", "parse_target"]


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: ``host`` and ``port``, the ``Host`` header, the path (with query)."""

    host: str
    port: int
    path: str
    url: str

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_hosts: Sequence[str] = (), *, url: str = "") -> None:
    """Refuse (``ConfigurationError``) a host that is not loopback nor in ``allow_hosts``."""
    allowed = {h.strip().lower().strip("[]") for h in allow_hosts}
    if is_loopback(host) or host.lower() in allowed:
        return
    raise ConfigurationError(
        "target",
        url or host,
        f"a loopback host (127.0.0.1, ::1, localhost); to load {host!r}, name it: "
        f"--allow-host {host} (Python: allow_hosts=[{host!r}])",
    )


def parse_target(url: str, allow_hosts: Sequence[str] = ()) -> Target:
    """The target of ``url`` (``http://host[:port][/path]``), checked by :func:`check_host`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigurationError("target", url, "an http:// URL, e.g. http://127.0.0.1:8000/")
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigurationError("target", url, "a port between 1 and 65535") from None
    check_host(parts.hostname, allow_hosts, url=url)
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=~-._")
    if parts.query:
        path += "?" + parts.query
    return Target(parts.hostname, port, path, url)

"""Route templates for metric labels: the template a request matched, never its raw path.

Starlette and FastAPI leave the matched route in ``scope["route"]``, but under a ``Mount`` the
inner router overwrites it with the route *within* the mount (``/users/{id}`` for
``/v1/users/1`` and ``/v2/users/2`` alike), and a mounted app without routes (static files)
leaves none. For those requests only (``root_path`` moved past ``app_root_path``), the
template is rebuilt by matching the request against the app's routes again, joining each
mount's path: ``/v1/users/{id}``, ``/static/{path}``.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping, Sequence
from typing import Any

__all__ = ["UNMATCHED", "matched_route", "route_template"]

UNMATCHED = "<unmatched>"

Scope = MutableMapping[str, Any]


def route_template(scope: Scope, app: Any = None, root: str | None = None) -> str:
    """The route template that served ``scope`` (read after the app ran), or ``<unmatched>``.

    ``app``: the ASGI app the request entered (needed to rebuild templates under mounts;
    default ``scope["app"]``, the innermost Starlette app). ``root``: the ``root_path`` the
    request had when it entered ``app`` (default: the one before any mount, which a mount
    keeps as ``app_root_path``; give it when ``app`` is itself mounted by another). Litestar
    and others may leave a ``path_template`` in the scope, which is used as it is.
    """
    entered = root if root is not None else scope.get("app_root_path", scope.get("root_path", ""))
    if scope.get("root_path", "") != entered:
        routes = _routes_of(app if app is not None else scope.get("app"))
        if routes is not None:
            # The request as it entered (a Host route reads its headers), before any mount.
            probe = {**scope, "root_path": entered, "path_params": {}}
            try:
                template = _walk(routes, probe)
            except Exception:  # a router we do not know: never fail the request over a label
                template = None
            if template is not None:
                return template
    route = matched_route(scope)
    if route is not None:
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if isinstance(path, str):
            return path
    template = scope.get("path_template")
    return template if isinstance(template, str) else UNMATCHED


def matched_route(scope: Scope) -> Any:
    """The route the router matched, as left in the scope (read after the app ran), or None.

    FastAPI (0.16x) leaves in ``scope["route"]`` the route as its router declared it, without
    the prefix of ``include_router``, and the route with its full template in
    ``scope["fastapi"]["effective_route_context"]``: that one, when there.
    """
    fastapi = scope.get("fastapi")
    if isinstance(fastapi, dict):
        context = fastapi.get("effective_route_context")
        if context is not None:
            if getattr(context, "path_format", ""):  # an APIRoute: its full template
                return context
            # A plain Route of an included router (add_route): its prefixed copy. (A mount
            # has routes: its template is rebuilt from the app's routes instead.)
            copy = getattr(context, "starlette_route", None)
            if copy is not None and getattr(copy, "routes", None) is None:
                return copy
    return scope.get("route")


def _routes_of(app: Any) -> Sequence[Any] | None:
    """The routes of ``app``, or of the app its middlewares wrap (``.app`` chains)."""
    for _ in range(16):
        if app is None:
            return None
        routes = getattr(app, "routes", None)
        if routes is not None:
            return routes  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
    return None


def _flat(routes: Sequence[Any]) -> Sequence[Any]:
    """``routes`` with FastAPI's included routers (0.16x) laid out as the prefixed routes they
    serve (``fastapi.routing.iter_route_contexts``); as they are otherwise. FastAPI is only
    looked for if the app has imported it."""
    fastapi_routing = sys.modules.get("fastapi.routing")
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    if iterate is None:
        return routes
    return list(iterate(routes))


def _walk(routes: Sequence[Any], scope: dict[str, Any]) -> str | None:
    """The template of the route ``scope`` matches, as Starlette's router picks it (the first
    full match, else the first partial one: a 405)."""
    partial: tuple[Any, dict[str, Any]] | None = None
    for route in _flat(routes):
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        if match.name == "FULL":
            return _template_of(route, {**scope, **child})
        if match.name == "PARTIAL" and partial is None:
            partial = (route, {**scope, **child})
    return None if partial is None else _template_of(*partial)


def _template_of(route: Any, scope: dict[str, Any]) -> str:
    prefix = getattr(route, "path", "") or ""
    inner = getattr(route, "routes", None)
    if inner is None:  # an endpoint
        return getattr(route, "path_format", None) or prefix
    below = _walk(inner, scope) if inner else None  # a Mount (or Host) and what it holds
    return prefix + (below if below is not None else "/{path}")

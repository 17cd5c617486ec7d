"""The whole console: every feature module's routes behind the ``Guard``.

Apart from ``gateway.web.app`` so the feature modules (which import ``Console`` and ``page``
from there) and the module that gathers them import in one direction only.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gateway.web import admin, board, calls, faxes, handover, paging, reports, spotcheck
from gateway.web.app import HERE, Console, Guard, auth_routes, event_route


def build_app(console: Console) -> Starlette:
    routes: list[Any] = [*auth_routes(console), event_route(console)]
    for module in (board, calls, faxes, paging, handover, spotcheck, reports, admin):
        routes += module.routes(console)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes)
    return Guard(app, console.config.web.allowed_networks)  # type: ignore[return-value]

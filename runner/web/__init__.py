"""The web view: server-rendered pages of the schedule, beside the API in ``runner run``.

``/`` lists every event with its timeline, ``/events/{name}`` shows one, ``/cleanup`` the
housekeeping. Pages only read (no token needed, like the API's GETs); the buttons of an
event's page call the API with the token the user types in. A small script refreshes the
live parts of a page every few seconds; without it the pages still read.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from runner.clock import Clock
from runner.service import SchedulerService
from runner.web import timeline, views, words

HERE = Path(__file__).parent
# Everything a page loads comes from this server; no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(words=words, width=timeline.WIDTH, outcomes=views.OUTCOMES)
    templates.env.filters.update(fromiso=_parsed, yaml=_yaml)
    return templates


def install(app: FastAPI, service: SchedulerService, clock: Clock) -> None:
    """Add the pages and their static files to ``app`` (whose middleware checks Host)."""
    templates = _templates()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, page: str, status: int = 200, **context: Any) -> HTMLResponse:
        now = clock.now()
        context.update(now=now, ago=lambda t: views.hours_ago(now, _parsed(t)))
        response = templates.TemplateResponse(request, page, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(
        request: Request, status: str | None = None, module_id: str | None = None
    ) -> HTMLResponse:
        data = await views.overview(service, clock.now(), status or None, module_id or None)
        return render(request, "index.html", view=data)

    @app.get("/events/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def event(
        request: Request, name: str, page: int = Query(1, ge=1, le=100_000)
    ) -> HTMLResponse:
        data = await views.event_page(service, name, clock.now(), page)
        if data is None:
            return render(request, "not_found.html", status=404, name=name)
        return render(request, "event.html", view=data)

    @app.get("/cleanup", response_class=HTMLResponse, include_in_schema=False)
    async def cleanup(request: Request) -> HTMLResponse:
        return render(request, "cleanup.html", view=await views.cleanup_page(service))


def _yaml(value: Any) -> str:
    """A spec as YAML, the way it is written in a config file."""
    text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    return text


def _parsed(value: datetime | str | None) -> datetime | None:
    """Timestamps come as datetimes from rows and as ISO text from stored JSON."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)

"""The analyst console: a static single-page app under ``/console``.

The page and its assets need no key (they hold no data); every data call the page
makes goes to the ``/v1`` API with the analyst's own Bearer key, so the console has
exactly the powers of the key typed into it. Assets are files in
``api/static/console`` served from this process: nothing is fetched from elsewhere,
and the Content-Security-Policy says so to the browser too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from distillguard.detectors.features.signals import SIGNALS

STATIC = Path(__file__).resolve().parent / "static" / "console"
#: Only these files are served; a path is never joined from the request.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the page is tiny and changes with releases: always revalidate
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_root() -> RedirectResponse:
    # relative asset URLs in index.html resolve against the trailing slash
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/")
async def console_page() -> FileResponse:
    return _asset("index.html")


@router.get("/console/signals.json")
async def signals() -> JSONResponse:
    """What each detector signal means, for the reasons chart's labels and tooltips."""
    body = [
        {
            "name": s.name,
            "kind": s.kind,
            "group": s.group,
            "meaning": s.meaning,
            "why": s.why,
            "benign": s.benign,
            "higher_is_suspicious": s.higher_is_suspicious,
        }
        for s in SIGNALS
    ]
    return JSONResponse(body, headers=HEADERS)


@router.get("/console/{name}")
async def console_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no console asset {name!r}")
    return _asset(name)


def _asset(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=HEADERS)

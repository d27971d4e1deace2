"""The live board's pages and its sign-in (issue 20 items 9 and 15); its stream is parkmon/api/board.py's.

- ``GET /board/`` lists the parks the caller may see, no other (a regulator's regions, an operator's park);
- ``GET /board/{park}`` is a shell without data. Without a valid token it answers the same for every
  well-formed key, registered, another's or not, so park keys cannot be probed; signed in, 404 for a park
  the caller may not see, as for one that does not exist;
- ``POST /board/sign-in`` checks a token and sets it as the board's cookie from the server: HttpOnly (no
  script reads it), SameSite=Strict, Secure behind TLS. The cookie authenticates the board's reads only
  (parkmon.api.auth.cookie_allowed): every write needs the Authorization header. ``POST /board/sign-out``
  clears it.
"""

from __future__ import annotations

import html
import re
from typing import Annotated

import anyio
from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from parkmon.api.auth import MAX_TOKEN, TOKEN_COOKIE, Auth, Principal
from parkmon.api.board import STATIC_DIR
from parkmon.api.tenancy import policy, visible_parks

router = APIRouter(tags=["board"])

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # the registry's park keys
COOKIE_MAX_AGE_S = 12 * 3600  # a signed-in board stays signed in for a shift


async def _signed_in(request: Request) -> Principal | None:
    """The caller, when its header or cookie holds a valid token; None: anonymous or refused."""
    auth: Auth | None = request.app.state.auth
    if auth is None:
        return None
    try:
        return await run_in_threadpool(auth.principal, request)
    except HTTPException:
        return None


@router.get("/board/", response_class=HTMLResponse, summary="The parks' live boards (实时看板列表)",
            openapi_extra=policy("signed_in"))
async def boards(request: Request) -> HTMLResponse:
    store = request.app.state.store
    who: Principal | None = getattr(request.state, "principal", None)
    seen = None if who is None else await run_in_threadpool(visible_parks, who, store)
    parks = [p for p in await anyio.to_thread.run_sync(store.parks) if seen is None or p.key in seen]
    items = "".join(f'<li><a href="{html.escape(p.key)}">{html.escape(p.name_zh)} · {html.escape(p.name_en)}</a>'
                    f" <code>{html.escape(p.key)}</code></li>" for p in parks)
    return HTMLResponse(_PAGE_FRAME.format(title="园区实时看板 · Live boards",
                                           body=f"<ul>{items}</ul>" if parks else
                                           "<p>没有可见的园区 · no park to show</p>"))


@router.get("/board/{park}", response_class=HTMLResponse, summary="A park's live board (园区实时看板)",
            openapi_extra=policy("public"))
async def board_page(request: Request, park: str) -> HTMLResponse:
    known = _KEY.fullmatch(park) is not None
    auth_on = request.app.state.auth is not None
    who = await _signed_in(request) if known and auth_on else None
    if known and (who is not None or not auth_on):
        store = request.app.state.store
        seen = None if who is None else await run_in_threadpool(visible_parks, who, store)
        parks = {p.key for p in await anyio.to_thread.run_sync(store.parks)}
        known = park in parks and (seen is None or park in seen)
    if not known:
        name = html.escape(park)
        msg = (f"<p>园区 <code>{name}</code> 未登记或不可见 · park <code>{name}</code> is not registered or not "
               'yours to see. <a href="./">所有园区 · all parks</a></p>')
        return HTMLResponse(_PAGE_FRAME.format(title="404", body=msg), status_code=404)
    page = (STATIC_DIR / "board.html").read_text(encoding="utf-8")
    note = str(getattr(request.app.state, "board_note", ""))
    return HTMLResponse(page.replace("{{park}}", html.escape(park)).replace("{{note}}", html.escape(note))
                        .replace("{{note_hidden}}", "" if note else " hidden"))


@router.post("/board/sign-in", summary="Sign the board in: the token as an HttpOnly cookie (看板登录)",
             status_code=204, openapi_extra=policy("public"))
async def sign_in(request: Request, token: Annotated[str, Body(embed=True, min_length=1, max_length=MAX_TOKEN)],
                  ) -> Response:
    auth: Auth | None = request.app.state.auth
    if auth is None:
        return Response(status_code=204)  # authentication off: nothing to remember
    # checked as a header would be: a bad token gets its 401 and no cookie
    probe = Request({**request.scope, "headers": [(b"authorization", f"Bearer {token}".encode())]})
    await run_in_threadpool(auth.principal, probe)
    out = Response(status_code=204)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    out.set_cookie(TOKEN_COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True, samesite="strict",
                   secure=secure)
    return out


@router.post("/board/sign-out", summary="Sign the board out (看板退出)", status_code=204,
             openapi_extra=policy("public"))
async def sign_out() -> Response:
    out = Response(status_code=204)
    out.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return out


_PAGE_FRAME = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="../static/board.css"></head><body class="plain"><h1>{title}</h1>{body}</body></html>"""

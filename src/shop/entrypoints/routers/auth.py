"""``POST /auth/token``: the OAuth2 password flow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from shop.adapters.sessions import new_session_id
from shop.entrypoints.auth import COOKIE, issue_token
from shop.entrypoints.deps import ServicesDep
from shop.entrypoints.schemas import TokenOut, errors
from shop.service_layer import handlers

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses=errors((401, "wrong email or password"), 413, 422, 503),
)
async def token(
    request: Request,
    response: Response,
    svc: ServicesDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Sign in with an email (``username``) and password; returns a bearer token and starts a
    cart session (a cookie, and bound to the token)."""
    if len(form.username) > 254 or len(form.password) > 1024:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "username or password too long")
    if "\x00" in form.username:  # no email has one, and PostgreSQL refuses it in a query (500)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "username contains NUL")
    user = await handlers.authenticate(svc, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong email or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session_id = new_session_id()
    ttl = svc.settings.token_ttl
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(svc.settings.session_ttl),
        httponly=True,
        samesite="lax",
        secure=svc.settings.cookie_secure,
    )
    return TokenOut(
        access_token=issue_token(request.app.state.secret, user.id, session_id, ttl),
        expires_in=int(ttl),
    )

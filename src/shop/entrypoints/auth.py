"""Tokens (JWT, HS256) and the FastAPI dependencies that read them.

``POST /auth/token`` (OAuth2 password flow) returns a token whose ``sub`` is the user id and
whose ``sid`` binds a cart session to it. Every user-scoped route checks that the token's user
is the path's user: 401 without a valid token, 403 for someone else's data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import OAuth2PasswordBearer

from shop.adapters.sessions import is_session_id
from shop.entrypoints.schemas import MAX_ID

__all__ = ["COOKIE", "Principal", "current_user", "issue_token", "self_only"]

COOKIE = "shop_session"
"""The cart session cookie (HttpOnly, SameSite=Lax)."""
ALGORITHM = "HS256"

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user, from a valid token."""

    user_id: int
    session_id: str


def issue_token(secret: str, user_id: int, session_id: str, ttl: float) -> str:
    """A token for ``user_id`` and its cart session, valid ``ttl`` seconds."""
    now = int(time.time())
    claims = {"sub": str(user_id), "sid": session_id, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def decode_token(secret: str, token: str) -> Principal:
    """The principal of a valid token; 401 (HTTPException) for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "sid"]}
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired") from None
    except jwt.PyJWTError:
        raise _unauthorized("the token is not valid") from None
    sub, sid = claims.get("sub"), claims.get("sid")
    # ASCII digits (int() refuses "²", which isdigit() accepts) of an id a table can hold.
    if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()) or len(sub) > 19:
        raise _unauthorized("the token is not valid")
    if not 1 <= int(sub) <= MAX_ID or not isinstance(sid, str) or not is_session_id(sid):
        raise _unauthorized("the token is not valid")
    return Principal(int(sub), sid)


async def current_user(
    request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    """The signed-in user; the cart session is the cookie's when it has one, else the token's."""
    if not token:
        raise _unauthorized("not signed in: send Authorization: Bearer <token>")
    principal = decode_token(request.app.state.secret, token)
    cookie = request.cookies.get(COOKIE)
    if cookie and is_session_id(cookie) and cookie != principal.session_id:
        return Principal(principal.user_id, cookie)
    return principal


async def self_only(
    user_id: Annotated[int, Path(ge=1, le=2**62, description="a user id")],
    principal: Annotated[Principal, Depends(current_user)],
) -> Principal:
    """The signed-in user, when the path's ``user_id`` is theirs; 403 otherwise."""
    if principal.user_id != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this is another user's data")
    return principal

"""Who is calling: the Bearer key check (once any key exists) and the per-caller rate limit, as dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chatbot.api.errors import Unauthorized
from chatbot.api.keys import KeyStore
from chatbot.api.limits import RateLimiter

bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey",
    description="A key from `chatbot keys create`. Needed once any active key exists; until then the API is "
                "open to whoever can reach it (loopback by default).")


@dataclass(frozen=True)
class Caller:
    id: str  # what the rate limit counts: the key, or the client address while no key exists
    who: str  # the same, for messages
    key_id: int | None = None
    rate_limit: int | None = None  # the key's own limit per minute (None: the server's)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def caller_of(request: Request, keys: KeyStore) -> Caller:
    """The caller, or Unauthorized when keys are in use and the request has no valid one."""
    token = _token(request)
    required, key = keys.check(token)
    if key is not None:
        return Caller(f"key:{key.id}", f"API key {key.prefix}…", key.id, key.rate_limit)
    if required:
        if token is None:
            raise Unauthorized("This API needs a key: send the header `Authorization: Bearer <key>`. An "
                               "administrator creates one with `chatbot keys create`.")
        known = keys.find(token)
        if known is not None and known.revoked_at:
            raise Unauthorized(f"This API key was revoked ({known.revoked_at}). Ask the administrator for a new "
                               "one.")
        raise Unauthorized("This API key is not valid. Check that the whole key was sent after `Bearer `.")
    host = request.client.host if request.client else "unknown"
    return Caller(f"ip:{host}", f"client {host}")


def dependencies(keys: KeyStore, limiter: RateLimiter) -> tuple[Callable[..., Caller], Callable[..., Caller]]:
    """(authenticated, authenticated_and_counted): FastAPI dependencies. They are plain functions, so FastAPI
    runs them in the threadpool (each reads the keys table)."""

    def authenticated(request: Request,
                      _: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
        return caller_of(request, keys)

    def counted(request: Request, _: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
        caller = caller_of(request, keys)
        limiter.hit(caller.id, caller.who, caller.rate_limit)
        return caller

    return authenticated, counted

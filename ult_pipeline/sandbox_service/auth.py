"""Who is calling: the API key (super-admin) or a user's JWT, as the real service decides.

Refusals happen before GraphQL runs and become HTTP 401. Messages never contain the key
or the token.
"""

from __future__ import annotations

import hmac
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import jwt

DEBUG_ISSUER = "calmid-debug"
# The real service's development secret, used as the UTF-8 string as is.
DEBUG_SECRET = "iXtZx1D5AqEB0B9pfn+hRQ=="
DEBUG_ALGORITHMS = ("HS256", "HS384", "HS512")
BEARER_PREFIX = "Bearer "


@dataclass(frozen=True)
class Identity:
    is_admin: bool
    user_id: str | None = None
    email: str | None = None
    username: str | None = None


ADMIN = Identity(is_admin=True)


class AuthError(Exception):
    """A refusal; `message` is what the client sees in the 401 body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _VerifiedToken:
    identity: Identity
    expires_at: float | None


class TokenCache:
    """Verified tokens by token string, bounded; expiry is re-checked on every hit."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _VerifiedToken] = OrderedDict()

    def get(self, token: str) -> _VerifiedToken | None:
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(self, token: str, entry: _VerifiedToken) -> None:
        self._entries[token] = entry
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _expired(expires_at: float | None, now: float) -> bool:
    return expires_at is not None and now >= expires_at


def verify_jwt(token: str, now: float | None = None) -> _VerifiedToken:
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("Malformed authentication token") from None
    if not isinstance(unverified, dict):
        raise AuthError("Malformed authentication token")
    issuer = unverified.get("iss")
    if issuer != DEBUG_ISSUER:
        raise AuthError("Invalid token provided: unknown token issuer. Please log in again.")
    if header.get("alg") not in DEBUG_ALGORITHMS:
        raise AuthError("Invalid token provided: invalid algorithm. Please log in again.")
    try:
        with warnings.catch_warnings():
            # PyJWT warns that the 24-byte secret is short; it is the real service's.
            warnings.simplefilter("ignore")
            claims = jwt.decode(
                token,
                DEBUG_SECRET,
                algorithms=list(DEBUG_ALGORITHMS),
                issuer=DEBUG_ISSUER,
                options={"require": ["iss"], "verify_exp": False},
            )
    except jwt.InvalidSignatureError:
        raise AuthError("Invalid token provided: invalid signature. Please log in again.") from None
    except jwt.PyJWTError as error:
        raise AuthError(f"Invalid token provided: {type(error).__name__}. Please log in again.") from None
    user_id = claims.get("id")
    email = claims.get("email")
    username = claims.get("user_name") or claims.get("username")
    if not isinstance(user_id, str) or not user_id or not (email or username):
        raise AuthError("Malformed authentication token: it needs the claims id and email or user_name")
    exp = claims.get("exp")
    expires_at = float(exp) if isinstance(exp, (int, float)) else None
    entry = _VerifiedToken(Identity(False, user_id, email or None, username or None), expires_at)
    if _expired(expires_at, time.time() if now is None else now):
        raise AuthError("Invalid token provided: jwt expired. Please log in again.")
    return entry


def authenticate(
    authorization: str | None,
    access_cookie: str | None,
    api_key: str,
    cache: TokenCache | None = None,
    now: float | None = None,
) -> Identity:
    """The caller's identity, or AuthError with the 401 message."""
    if authorization:
        if authorization.startswith(BEARER_PREFIX):
            presented = authorization[len(BEARER_PREFIX):].strip()
            if hmac.compare_digest(presented.encode(), api_key.encode()):
                return ADMIN
            raise AuthError("Invalid API key provided")
        token = authorization.strip()
    elif access_cookie:
        token = access_cookie.strip()
    else:
        raise AuthError("No authentication token. Send a JWT in Authorization or the access cookie.")
    if token.count(".") != 2:
        raise AuthError("Malformed authentication token")
    current = time.time() if now is None else now
    entry = cache.get(token) if cache is not None else None
    if entry is None:
        entry = verify_jwt(token, current)
        if cache is not None:
            cache.put(token, entry)
    if _expired(entry.expires_at, current):
        raise AuthError("Invalid token provided: jwt expired. Please log in again.")
    return entry.identity

"""Who the end user of a request is: only ever a user the caller has proven.

A user is proven in one of two ways: the caller *is* that user (``Principal.user_id``, from a
user's token), or the caller is a trusted backend whose key holds ``users:assert`` and names
the user (``x-user-id`` or OpenAI's ``user``). Any other key that names a user, or that uses
a session of a user it has not proven, gets a 403; it is never silently trusted.

The same holds for writing a user's context (profile, sessions, interactions, erasure):
``context:write`` says a key may write context at all, :func:`writes_for` that it may write
this user's.
"""

from __future__ import annotations

from meshgate.auth.principal import Principal
from meshgate.errors import Forbidden

ASSERT_SCOPE = "users:assert"


class IdentityRefused(Forbidden):
    """The caller names an end user (or a session of one) it has not proven to be."""


def may_assert(principal: Principal) -> bool:
    return principal.has(ASSERT_SCOPE)


def end_user(principal: Principal, claimed: str | None, *, param: str = "x-user-id") -> str | None:
    """The user a request acts for: the claimed one when the caller may claim it."""
    if claimed is None or claimed == principal.user_id:
        return principal.user_id if claimed is None else claimed
    if may_assert(principal):
        return claimed
    raise IdentityRefused(
        f"naming an end user ({param}) needs an API key with the '{ASSERT_SCOPE}' scope",
        param=param,
        code="user_not_proven",
    )


def session_user(principal: Principal, user_id: str | None, owner: str) -> str:
    """The user of a session owned by ``owner``, for a caller acting for ``user_id``.

    A session is bound to its user: it is used only by that user, or by a key asserting
    that very user (or, when it names no user, asserting the session's owner)."""
    if user_id is not None and user_id != owner:
        raise IdentityRefused(
            "the session belongs to another user", param="x-session-id", code="session_not_yours"
        )
    if owner == principal.user_id or may_assert(principal):
        return owner
    raise IdentityRefused(
        f"using an end user's session needs an API key with the '{ASSERT_SCOPE}' scope",
        param="x-session-id",
        code="user_not_proven",
    )


def writes_for(principal: Principal, user_id: str, *, param: str = "user_id") -> None:
    """A caller writes a user's context only as that user or asserting users (403 otherwise):
    a ``context:write`` key alone could plant preferences or history that models then read."""
    end_user(principal, user_id, param=param)

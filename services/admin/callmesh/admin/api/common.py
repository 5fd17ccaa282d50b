"""What every admin router shares: the actor of a request, pages, and list parameters."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from callmesh.admin.domain.common import Actor, ActorKind
from callmesh.core.auth import Principal
from callmesh.core.http import Problem, problem_responses

# Re-exported for the routers: ``problems(404, 409)`` documents a route's own error answers.
problems = problem_responses
__all__ = ["After", "Limit", "PageOut", "Problem", "actor_of", "problems"]

T = TypeVar("T")

API_KEY_PREFIX = "key_"


def actor_of(principal: Principal) -> Actor:
    """The audit actor of an authenticated request."""
    if principal.is_operator:
        kind = ActorKind.OPERATOR
    elif principal.subject.startswith(API_KEY_PREFIX):
        kind = ActorKind.API_KEY
    else:
        kind = ActorKind.USER
    return Actor(kind, principal.subject, principal.tenant_id, tuple(sorted(principal.roles)))


class PageOut(BaseModel, Generic[T]):
    """A page of results; pass ``next`` back as ``after`` for the following page."""

    model_config = ConfigDict(extra="forbid")

    items: list[T]
    next: str | None = None


Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
After = Annotated[
    str | None, Query(max_length=64, description="cursor: the `next` of the previous page")
]

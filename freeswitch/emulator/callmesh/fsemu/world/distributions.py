"""Random durations for scenarios: fixed, exponential, uniform, normal and lognormal, seeded."""

from __future__ import annotations

import math
import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class _Dist(BaseModel):
    """Common base: unknown fields are refused so a typo names itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Fixed(_Dist):
    """Always the same number of seconds."""

    dist: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        """The value itself."""
        return self.value


class Exponential(_Dist):
    """Memoryless durations around ``mean`` (holding times, patience, inter-arrival)."""

    dist: Literal["exponential"] = "exponential"
    mean: float = Field(gt=0)
    max: float | None = Field(default=None, gt=0)

    def sample(self, rng: random.Random) -> float:
        """A draw, capped at ``max`` when set."""
        value = rng.expovariate(1.0 / self.mean)
        return min(value, self.max) if self.max is not None else value


class Uniform(_Dist):
    """Anything between ``min`` and ``max`` with the same chance."""

    dist: Literal["uniform"] = "uniform"
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.max < self.min:
            raise ValueError("max must be greater than or equal to min")
        return self

    def sample(self, rng: random.Random) -> float:
        """A draw in [min, max]."""
        return rng.uniform(self.min, self.max)


class Normal(_Dist):
    """A bell around ``mean``, clipped below at ``min`` (a duration is never negative)."""

    dist: Literal["normal"] = "normal"
    mean: float = Field(ge=0)
    stddev: float = Field(ge=0)
    min: float = Field(default=0.0, ge=0)

    def sample(self, rng: random.Random) -> float:
        """A draw, never below ``min``."""
        return max(self.min, rng.gauss(self.mean, self.stddev))


class LogNormal(_Dist):
    """A long right tail around ``median``: how call-centre talk times are usually spread."""

    dist: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    sigma: float = Field(gt=0)
    max: float | None = Field(default=None, gt=0)

    def sample(self, rng: random.Random) -> float:
        """A draw, capped at ``max`` when set."""
        value = rng.lognormvariate(math.log(self.median), self.sigma)
        return min(value, self.max) if self.max is not None else value


def _number_is_fixed(value: Any) -> Any:
    """A bare number in YAML (``talk: 30``) means a fixed duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


Dist = Annotated[
    Fixed | Exponential | Uniform | Normal | LogNormal,
    Field(discriminator="dist"),
    BeforeValidator(_number_is_fixed),
]

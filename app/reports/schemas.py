"""Input of the targets, shared by the JSON API and the administrator's page."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.classes.models import Level
from app.reports.rules import FIRST_DAY, LAST_DAY


class TargetCreate(BaseModel):
    """A share of a staff group trained by a date (e.g. 100% of managers by 31/12/2024)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=255)
    track: Literal["gvpt", "cbql"]
    level: Level | None = None
    district: str | None = Field(default=None, max_length=255)
    module_key: str | None = Field(default=None, max_length=64)
    staff_count: int = Field(ge=1, le=10_000_000)
    percent: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2)
    due_on: date = Field(ge=FIRST_DAY, le=LAST_DAY)
    note: str | None = Field(default=None, max_length=2000)

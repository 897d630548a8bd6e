"""Input and output shapes of the classes domain, shared by the JSON API and the pages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from app.classes.models import DEFAULT_CLASS_CAP, Level


class WaveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    year: int = Field(ge=2000, le=2100)
    description: str | None = Field(default=None, max_length=2000)


class WaveOut(BaseModel):
    id: int
    name: str
    year: int
    description: str | None


class ClassCreate(BaseModel):
    """A class: give either the in-person dates (the anchor) or a start date."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")
    name: str = Field(min_length=1, max_length=255)
    module_id: int
    level: Level
    capacity: int = Field(default=DEFAULT_CLASS_CAP, ge=1, le=DEFAULT_CLASS_CAP)
    wave_id: int | None = None
    start_date: date | None = None
    in_person_dates: list[date] = Field(default_factory=list, max_length=14)
    venue: str | None = Field(default=None, max_length=500)
    room: str | None = Field(default=None, max_length=120)
    course_id: int | None = None

    @model_validator(mode="after")
    def _one_anchor(self) -> ClassCreate:
        if bool(self.start_date) == bool(self.in_person_dates):
            raise ValueError("give either start_date or in_person_dates, not both")
        return self


class FallbackSet(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: HttpUrl
    reason: str = Field(min_length=1, max_length=2000)
    decided_on: date


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int


class ShiftCreate(BaseModel):
    """Move one learner's dates later (sick leave, a late enrolment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=2000)
    delay_days: int | None = Field(default=None, ge=1, le=366)
    in_person_dates: list[date] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ShiftCreate:
        if (self.delay_days is None) == (self.in_person_dates is None):
            raise ValueError("give either delay_days or in_person_dates")
        return self


class CohortMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enrolment_id: int
    cohort_id: int


class CohortTrainer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trainer_user_id: int | None


class SupportLogCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: date
    form: Literal["online", "in_person"]
    periods: Decimal = Field(gt=0, le=24, decimal_places=1)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("periods")
    @classmethod
    def _half_periods(cls, value: Decimal) -> Decimal:
        if (value * 2) % 1 != 0:
            raise ValueError("periods are counted in halves (0.5, 1, 1.5, …)")
        return value


class HolidayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: date
    kind: Literal["off", "working"]
    name: str = Field(min_length=1, max_length=200)

"""Imports every domain's models so Alembic and the test suite see the whole schema."""

from app.attendance.models import AttendanceChange, AttendanceMark, CheckinRecord, CheckinWindow
from app.catalogue.models import Module, ModuleVersion
from app.classes.models import (
    ClassSession,
    ClassTrainer,
    Cohort,
    Enrolment,
    HolidayOverride,
    ScheduleShift,
    SupportLog,
    TrainingClass,
    Wave,
)
from app.core.db import Base
from app.demo.models import DemoPlatformKey
from app.identity.models import Course, Membership, ResourceLink, User, WebSession
from app.keys.models import ToolKey, ToolSecret
from app.launch.models import UsedNonce
from app.passback.models import ScoreOutbox
from app.platforms.models import Deployment, Platform

metadata = Base.metadata

__all__ = [
    "AttendanceChange",
    "AttendanceMark",
    "CheckinRecord",
    "CheckinWindow",
    "ClassSession",
    "ClassTrainer",
    "Cohort",
    "Course",
    "DemoPlatformKey",
    "Deployment",
    "Enrolment",
    "HolidayOverride",
    "Membership",
    "Module",
    "ModuleVersion",
    "Platform",
    "ResourceLink",
    "ScheduleShift",
    "ScoreOutbox",
    "SupportLog",
    "ToolKey",
    "ToolSecret",
    "TrainingClass",
    "UsedNonce",
    "User",
    "Wave",
    "WebSession",
    "metadata",
]

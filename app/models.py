"""Imports every domain's models so Alembic and the test suite see the whole schema."""

from app.attendance.models import AttendanceChange, AttendanceMark, CheckinRecord, CheckinWindow
from app.audit.models import AuditEvent
from app.catalogue.models import Module, ModuleVersion
from app.certificates.models import (
    Certificate,
    CertificateIssuer,
    CertificateJob,
    VerifyMiss,
)
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
from app.grading.models import ModuleResultRow, ResultChange
from app.identity.models import Course, Membership, ResourceLink, User, WebSession
from app.keys.models import ToolKey, ToolSecret
from app.launch.models import LaunchHandoff, UsedNonce
from app.learning.models import ItemProgress, QuizAttempt, Submission, SubmissionGrade
from app.ops.models import Lease
from app.passback.models import ScoreOutbox
from app.platforms.models import Deployment, Platform, PlatformInvitation
from app.reports.models import Target

metadata = Base.metadata

__all__ = [
    "AttendanceChange",
    "AttendanceMark",
    "AuditEvent",
    "Certificate",
    "CertificateIssuer",
    "CertificateJob",
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
    "ItemProgress",
    "LaunchHandoff",
    "Lease",
    "Membership",
    "Module",
    "ModuleResultRow",
    "ModuleVersion",
    "Platform",
    "PlatformInvitation",
    "QuizAttempt",
    "ResourceLink",
    "ResultChange",
    "ScheduleShift",
    "ScoreOutbox",
    "Submission",
    "SubmissionGrade",
    "SupportLog",
    "Target",
    "ToolKey",
    "ToolSecret",
    "TrainingClass",
    "UsedNonce",
    "User",
    "VerifyMiss",
    "Wave",
    "WebSession",
    "metadata",
]

"""Certificates as plain functions over plain data: who may have one, its code, what it says.

Eligibility. A learner gets a certificate for a module when their module result is **final**
and its classification **completes** the module (``complete`` or a tier above it, see
``app.grading.rules.GradePolicy.completes``) and either

* the learner's module has ended (the day after the last day of their own schedule, in
  Vietnam's time zone): until then the scores can still move, or
* a trainer set the result (an override): a decision taken on purpose, with a reason.

Codes. ``B727-XXXX-XXXX-XXXX``: the fixed prefix ``B727`` and 12 symbols of Crockford's
base32 (``0-9A-Z`` without ``I L O U``) drawn from :mod:`secrets` — 60 bits, so a code cannot
be guessed, and it reads aloud and types without ambiguity. People may type it in lower
case, with spaces, without hyphens, or with ``O``/``I``/``L`` for ``0``/``1``/``1``:
:func:`normalise_code` gives back the canonical form (or ``None`` for what cannot be one).

Snapshot. What the certificate says, frozen when it is issued (:func:`build_snapshot`): the
PDF and the verification page are drawn from it alone, so they never change afterwards.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from app.grading.rules import GradePolicy

__all__ = [
    "CODE_PREFIX",
    "CROCKFORD",
    "MODULE",
    "REFUSALS",
    "SNAPSHOT_VERSION",
    "Eligibility",
    "IssuerFacts",
    "LearnerFacts",
    "ResultFacts",
    "ascii_slug",
    "build_snapshot",
    "eligibility",
    "file_name",
    "format_code",
    "module_label",
    "new_code",
    "normalise_code",
    "still_completes",
    "verify_url",
]

CODE_PREFIX = "B727"
CODE_SYMBOLS = 12
CODE_GROUP = 4
#: Crockford's base32: digits and capitals without I, L, O and U.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")
SNAPSHOT_VERSION = 1
#: How the certificate names a module of Decision 4660 (fixed Vietnamese, as on the form).
MODULE = "Mô đun %s: %s"


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


Reason = Literal["no_result", "not_final", "not_complete", "not_ended"]

#: Why a learner has no certificate (yet), as English message ids (``%(end)s``: dd/mm/yyyy).
REFUSALS: dict[str, str] = {
    "no_result": N_("There is no module result for this learner yet."),
    "not_final": N_("The module result is not final yet: a component of it has no score."),
    "not_complete": N_("The module result is not “complete”, so no certificate can be issued."),
    "not_ended": N_("Certificates are issued once the module has ended, after %(end)s."),
}


# -- codes ---------------------------------------------------------------------------------


def format_code(symbols: str) -> str:
    """``B727-`` and the symbols in groups of four."""
    groups = [symbols[i : i + CODE_GROUP] for i in range(0, len(symbols), CODE_GROUP)]
    return "-".join((CODE_PREFIX, *groups))


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """A fresh, unguessable certificate code (60 random bits)."""
    return format_code("".join(choice(CROCKFORD) for _ in range(CODE_SYMBOLS)))


def normalise_code(text: str | None) -> str | None:
    """The canonical form of a typed or scanned code, or ``None`` when it cannot be one."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    compact = _SEPARATORS.sub("", text).upper()
    if not compact.startswith(CODE_PREFIX):
        return None
    symbols = compact[len(CODE_PREFIX) :].translate(_ALIASES)
    if len(symbols) != CODE_SYMBOLS or any(c not in CROCKFORD for c in symbols):
        return None
    return format_code(symbols)


def verify_url(base_url: str, code: str) -> str:
    """Where the QR code of a certificate points: the public verification page."""
    return f"{base_url.rstrip('/')}/verify/{code}"


# -- eligibility ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFacts:
    """A stored module result (``module_result``) as the rules need it."""

    classification: str
    final: bool
    overridden: bool
    score: Decimal | None


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: Reason | None = None
    #: The last day of the learner's module (for the ``not_ended`` message).
    end: date | None = None

    @property
    def message(self) -> str:
        return REFUSALS[self.reason] if self.reason else ""


def eligibility(
    result: ResultFacts | None, policy: GradePolicy, module_end: date, today: date
) -> Eligibility:
    """Whether a certificate may be issued for this result today (see the module doc)."""
    if result is None:
        return Eligibility(False, "no_result", module_end)
    if not result.final:
        return Eligibility(False, "not_final", module_end)
    if not policy.completes(result.classification):
        return Eligibility(False, "not_complete", module_end)
    if today <= module_end and not result.overridden:
        return Eligibility(False, "not_ended", module_end)
    return Eligibility(True, None, module_end)


def still_completes(classification: str, final: bool, policy: GradePolicy) -> bool:
    """Whether an issued certificate stays valid for this (recomputed) result."""
    return final and policy.completes(classification)


# -- the snapshot --------------------------------------------------------------------------


@dataclass(frozen=True)
class LearnerFacts:
    name: str
    school: str | None
    module_number: int | None
    module_title: str
    track: str
    class_code: str
    class_name: str
    start: date
    end: date
    periods: int


@dataclass(frozen=True)
class IssuerFacts:
    unit_name: str
    parent_unit: str | None = None
    signer_name: str | None = None
    signer_title: str | None = None
    place: str | None = None


def _nfc(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(unicodedata.normalize("NFC", value).split())
    return text or None


def build_snapshot(
    learner: LearnerFacts,
    result: ResultFacts,
    classification_vi: str,
    issuer: IssuerFacts,
    issued_at: datetime,
    issued_on: date,
) -> dict[str, Any]:
    """What the certificate says, as JSON-ready data (dates ISO, score as text)."""
    return {
        "v": SNAPSHOT_VERSION,
        "name": _nfc(learner.name),
        "school": _nfc(learner.school),
        "module_number": learner.module_number,
        "module_title": _nfc(learner.module_title),
        "track": learner.track,
        "class_code": learner.class_code,
        "class_name": _nfc(learner.class_name),
        "start": learner.start.isoformat(),
        "end": learner.end.isoformat(),
        "periods": learner.periods,
        "score": None if result.score is None else str(result.score),
        "classification": result.classification,
        "classification_vi": _nfc(classification_vi),
        "overridden": result.overridden,
        "issuer": {
            "unit_name": _nfc(issuer.unit_name),
            "parent_unit": _nfc(issuer.parent_unit),
            "signer_name": _nfc(issuer.signer_name),
            "signer_title": _nfc(issuer.signer_title),
            "place": _nfc(issuer.place),
        },
        "issued_at": issued_at.isoformat(),
        "issued_on": issued_on.isoformat(),
    }


def module_label(snapshot: dict[str, Any]) -> str:
    """The module as the certificate names it, "Mô đun 4: <title>" (always Vietnamese)."""
    title = str(snapshot.get("module_title") or "")
    number = snapshot.get("module_number")
    return MODULE % (number, title) if number else title


# -- file names ----------------------------------------------------------------------------


def ascii_slug(text: str) -> str:
    """ASCII for file names that travel well: "Nguyễn Thị Hồng Nhung" → "Nguyen-Thi-Hong-Nhung"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.findall(r"[A-Za-z0-9]+", plain)
    return "-".join(words)[:80] or "hoc-vien"


def file_name(name: str, taken: set[str]) -> str:
    """A PDF's name in a class ZIP: the learner's name, "-2", "-3"… when two share it."""
    base = ascii_slug(name)
    candidate, n = f"{base}.pdf", 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base}-{n}.pdf"
    taken.add(candidate.lower())
    return candidate

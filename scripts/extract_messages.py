"""Build ``app/locale/messages.pot``: every English message id blend727 can show.

Usage (from the repository root, with the virtualenv active)::

    python scripts/extract_messages.py            # write app/locale/messages.pot
    python scripts/extract_messages.py --check    # exit 1 if messages were added/removed

Two sources are merged into one catalogue:

1. What ``pybabel extract -F babel.cfg`` finds: ``_()``/``gettext()`` calls in the Jinja2
   templates and in the Python code.
2. The English strings that are not inside a ``_()`` call and that pybabel therefore misses:

   * ``title``/``detail``/``advice`` class attributes of every ``AppError`` subclass
     (``app.core.errors``, ``DemoRefused``, …), read by importing the modules;
   * ``lti.errors.REASONS`` (titles and details), ``lti.errors._ADVICE_ADMIN`` and
     ``lti.errors.ADVICE``;
   * string literals passed to the error constructors (``AppError``, ``ValidationFailed``,
     ``Conflict``, ``NotFound``, ``Forbidden``, ``Unauthenticated``, ``DemoRefused``,
     ``LaunchRefused``) as first positional argument or as ``detail=``/``title=``/
     ``advice=``, and literals assigned to ``<error>.title/.detail/.advice`` — found with
     ``ast`` in ``app/`` and ``lti/``. ``LaunchRefused("reason", …)`` takes a reason code
     (a key of ``REASONS``), not a message, so its arguments are skipped;
     ``RegistrationRefused("code", "message", …)`` takes its message second.

Then update the Vietnamese catalogue from the template (see docs) and translate what is new.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import io
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
POT_PATH = ROOT / "app" / "locale" / "messages.pot"
BABEL_CFG = ROOT / "babel.cfg"

# Packages scanned with ``ast`` for error constructor calls.
SCANNED_PACKAGES = ("app", "lti")
# Modules imported so that every AppError subclass (and REASONS) is defined.
ERROR_MODULES = (
    "app.core.errors",
    "lti.errors",
    "app.demo.endpoints",
    "app.classes.service",
    "app.catalogue.service",
    "app.rosters.service",
    "app.schedule.rules",
    "app.launch.service",
    "app.ops.endpoints",
    "app.learning.service",
    "app.certificates.limits",
    "app.imports.service",
)
# Module-level tables of English message ids: (module, attribute).
MESSAGE_TABLES = (
    ("app.schedule.ics", "MESSAGES"),
    ("app.core.templating", "WEEKDAYS"),
    ("app.grading.rules", "MESSAGES"),
)
# Constructors whose literal arguments are message ids.
ERROR_CONSTRUCTORS = {
    "AppError",
    "ValidationFailed",
    "Conflict",
    "NotFound",
    "Forbidden",
    "Unauthenticated",
    "PayloadTooLarge",
    "DemoRefused",
    "LaunchRefused",
    "ScheduleError",
    "ClassFull",
    "RosterUnavailable",
    "ImportRefused",
    "RuleResult",
    "RegistrationRefused",
}
# Which positional argument holds the message (default 0; None: no positional message).
MESSAGE_ARG = {
    "LaunchRefused": None,
    "ScheduleError": 1,
    "RuleResult": None,
    "RegistrationRefused": 1,  # (code, message id, …)
}
MESSAGE_FIELDS = ("title", "detail", "advice", "rule", "message")

# (message id — a (singular, plural) pair for ngettext —, path relative to ROOT, line)
Found = tuple[str | tuple[str, str], str, int]


def _rel(path: str | Path) -> str:
    return Path(path).resolve().relative_to(ROOT).as_posix()


def from_babel() -> Iterator[Found]:
    """Step 1: what ``pybabel extract -F babel.cfg`` would find (templates, ``_()`` calls)."""
    with BABEL_CFG.open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(BABEL_CFG))
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        # ngettext yields (singular, plural): kept as a pair, a plural entry in the catalogue.
        if isinstance(message, tuple):
            singular, plural = message[0], message[1] if len(message) > 1 else None
            if singular and plural:
                yield (singular, plural), Path(filename).as_posix(), lineno
            elif singular:
                yield singular, Path(filename).as_posix(), lineno
        elif message:
            yield message, Path(filename).as_posix(), lineno


def _all_subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def from_error_classes() -> Iterator[Found]:
    """Step 2a: class attributes of AppError and its subclasses, and lti.errors.REASONS."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in ERROR_MODULES:
        importlib.import_module(name)
    from app.core.errors import AppError
    from lti import errors as lti_errors

    for cls in (AppError, *_all_subclasses(AppError)):
        path = _rel(inspect.getsourcefile(cls) or "")
        line = inspect.getsourcelines(cls)[1]
        for field in MESSAGE_FIELDS:
            value = cls.__dict__.get(field)  # only what this class itself defines
            if isinstance(value, str) and value:
                yield value, path, line

    path = _rel(lti_errors.__file__)
    # Line of each string literal in lti/errors.py, for the "#:" references.
    tree = ast.parse(Path(lti_errors.__file__).read_text(encoding="utf-8"))
    lines = {
        node.value: node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }

    def line_of(text: str) -> int:
        return lines.get(text, 0)

    yield lti_errors._ADVICE_ADMIN, path, line_of(lti_errors._ADVICE_ADMIN)
    for advice in lti_errors.ADVICE.values():
        yield advice, path, line_of(advice)
    for _status, title, detail in lti_errors.REASONS.values():
        yield title, path, line_of(title)
        yield detail, path, line_of(detail)


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def _literals(node: ast.expr | None) -> list[str]:
    """A literal, or both branches of ``a if cond else b``."""
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    text = _literal(node)
    return [text] if text else []


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def from_call_sites() -> Iterator[Found]:
    """Step 2b: literal messages passed to error constructors or assigned to error fields."""
    for package in SCANNED_PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
            path = _rel(file)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and _callee(node) in ERROR_CONSTRUCTORS:
                    index = MESSAGE_ARG.get(_callee(node) or "", 0)
                    if index is not None and len(node.args) > index:
                        for text in _literals(node.args[index]):
                            yield text, path, node.lineno
                    for kw in node.keywords:
                        if kw.arg in MESSAGE_FIELDS:
                            for text in _literals(kw.value):
                                yield text, path, kw.value.lineno
                elif isinstance(node, ast.Assign):
                    text = _literal(node.value)
                    for target in node.targets:
                        if (
                            text
                            and isinstance(target, ast.Attribute)
                            and target.attr in MESSAGE_FIELDS
                        ):
                            yield text, path, node.lineno


def from_tables() -> Iterator[Found]:
    """Step 2c: module-level tables of message ids (e.g. the iCalendar event texts)."""
    for module_name, attribute in MESSAGE_TABLES:
        module = importlib.import_module(module_name)
        path = _rel(module.__file__ or module_name)
        for text in getattr(module, attribute).values():
            yield text, path, 1


def build_catalog() -> Catalog:
    """All message ids, each with the places it comes from."""
    catalog = Catalog(
        project="blend727",
        copyright_holder="blend727",
        charset="utf-8",
        fuzzy=False,
        header_comment=(
            "# English message ids of blend727, built by scripts/extract_messages.py.\n"
            "# Do not edit: re-run the script. Translations live in app/locale/<lang>/."
        ),
    )
    for source in (from_babel(), from_error_classes(), from_call_sites(), from_tables()):
        for msgid, path, line in source:
            catalog.add(msgid, locations=[(path, line)])
    return catalog


def render_pot(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    # No creation date in the output, so that re-running without changes gives no diff.
    catalog.creation_date = catalog.revision_date = None  # type: ignore[assignment]
    write_po(buf, catalog, width=100, sort_by_file=True, omit_header=False)
    lines = [
        line
        for line in buf.getvalue().split(b"\n")
        if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:'))
    ]
    return b"\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if messages were added or removed"
    )
    parser.add_argument("-o", "--output", type=Path, default=POT_PATH)
    args = parser.parse_args(argv)

    catalog = build_catalog()
    data = render_pot(catalog)
    if args.check:
        # Compare the message ids only: line numbers move with every edit of the code.
        current: set[str] = set()
        if args.output.exists():
            with args.output.open("rb") as fh:
                current = {str(m.id) for m in read_po(fh) if m.id}
        wanted = {str(m.id) for m in catalog if m.id}
        if current != wanted:
            print(f"{args.output} is out of date: run python scripts/extract_messages.py")
            for msgid in sorted(wanted - current):
                print(f"  new:     {msgid!r}")
            for msgid in sorted(current - wanted):
                print(f"  removed: {msgid!r}")
            return 1
        print(f"{args.output} is up to date ({len(catalog)} messages)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {len(catalog)} messages to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

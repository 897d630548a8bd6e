#!/usr/bin/env bash
# Set up and run every check: ruff, mypy, and the test suite on SQLite and, when one
# answers (BLEND727_TEST_DATABASE_URL or postgres@127.0.0.1:5432/test), on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
echo "== ruff"
ruff check --no-cache app lti modules migrations tests benches scripts
echo "== mypy"
mypy app lti modules
echo "== pytest"
set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$status"

#!/usr/bin/env bash
# Set up and start the demonstration: http://127.0.0.1:8727/demo
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/blend727 demo "$@"

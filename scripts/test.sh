#!/usr/bin/env bash
# The whole test suite: lint, types, then every tier (unit, meta, kernel, e2e).
# In CI (CI=true) every tier must run; a tier that cannot run fails, it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PODNET_REQUIRE_ALL_TIERS=${PODNET_REQUIRE_ALL_TIERS:-${CI:+1}}
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -q -p no:cacheprovider tests "$@"

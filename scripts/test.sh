#!/usr/bin/env bash
# The project's one test command: install what the tests need, start the
# servers they talk to, then run every check. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the package with every extra and the dev tools"
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'

echo "== starting test servers"
bash scripts/services.sh start

echo "== ruff"
python3 -m ruff check src tests bench
echo "== mypy --strict"
python3 -m mypy
echo "== docs (warnings are errors)"
python3 -m sphinx -W --keep-going -q -b html docs docs/_build/html

echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"

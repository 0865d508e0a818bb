# Each target installs what it needs into .venv first, so a fresh machine needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean system-packages

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	VOLT_TOKEN=dry-run-needs-no-token $(BIN)/volt-agent run --config config/kannel.yaml --dry-run --once

test: $(STAMP) system-packages
	$(BIN)/ruff check agent tests bench
	$(BIN)/python -m pytest -q

# The tests drive Debian's logrotate and systemd-analyze for real; install them when missing (as root with apt),
# otherwise their tests are skipped with the reason.
system-packages:
	@command -v logrotate >/dev/null && command -v systemd-analyze >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq logrotate systemd >/dev/null; } || \
	  echo "note: logrotate or systemd-analyze is missing: their tests will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check agent tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info

# Gatehouse: the two entry points are `make demo` and `make test`. Both install what they
# need on a fresh Debian machine with Rust (apt packages, a Python venv for client tests).

SHELL := /bin/bash
VENV  := .venv
APT_PACKAGES := libclang-dev clang postgresql postgresql-contrib python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps venv oidc lint fuzz bench

demo: deps
	cargo run --release -p gatehouse -- demo

test: deps venv oidc lint
	cargo test --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Installs only what is missing, so repeated runs are quick and need no network.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.ready

$(VENV)/.ready: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/python/requirements.txt
	touch $@

# The end-to-end tests' OpenID Provider (tests/oidc, Node.js). `npm ci` runs only when the
# lockfile is newer than the last install (node_modules/.package-lock.json), so it is a quick no-op.
oidc: tests/oidc/node_modules/.package-lock.json

tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund
	touch $@

fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run pg_codec -- -max_total_time=60

# Benchmarks are never part of `make test`.
bench:
	bench/pgbench.sh

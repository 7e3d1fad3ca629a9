# The commands README.md shows: `make lab` (the main job on one machine), `make test` (every test),
# `make install` (a real cluster's nodes). Each installs what it needs on a fresh Debian 12 machine.

PREFIX ?= /usr
CARGO ?= cargo

.PHONY: all build install lab test test-deps lint bench clean packages

all: build

build:
	$(CARGO) build --release --locked

# Installs hastack and its agent links so Pacemaker lists them.
install: build
	tests/setup/install-deps.sh pacemaker-cli-utils
	install -D -m 0755 target/release/hastack $(DESTDIR)$(PREFIX)/sbin/hastack
	$(DESTDIR)$(PREFIX)/sbin/hastack install --root $(or $(DESTDIR),/) --binary $(PREFIX)/sbin/hastack
	crm_resource --list-agents ocf:hastack

# The whole stack on a two-node Pacemaker cluster of namespaces on this machine (README, "The lab").
lab: install
	$(DESTDIR)$(PREFIX)/sbin/hastack lab up

test-deps:
	tests/setup/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Unit, agent, conformance tests: one nextest process per test suits namespace and service tests.
test: test-deps lint
	tests/setup/cleanup.sh
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --profile ci; \
	else \
		$(CARGO) test --locked; \
	fi; rc=$$?; tests/setup/cleanup.sh; exit $$rc

# .deb and .rpm into target/packages/, from one staging tree (packaging/build.sh).
packages: build
	tests/setup/install-deps.sh dpkg-dev rpm binutils lintian
	packaging/build.sh target/release/hastack target/packages

bench: build
	bench/run.sh

clean:
	$(CARGO) clean

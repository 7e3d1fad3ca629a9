# The commands README.md shows: `make lab` (the main job on one machine), `make test` (every test),
# `make install` (a real cluster's nodes). Each installs what it needs on a fresh Debian 12 machine.

CARGO ?= cargo

.PHONY: all build install lab test test-deps lint fuzz-smoke bench clean packages

all: build

build:
	$(CARGO) build --release --locked

# Installs what the packages carry (packaging/install.sh: the binaries, the agent links, man pages,
# completions, the alert agent's spool entry and flush timer, documentation), creates the spool,
# then shows that Pacemaker lists the agents.
# With DESTDIR, only stages the files there (the packages' layout; nothing on this machine changes).
install: build
	packaging/install.sh target/release/hastack $(or $(DESTDIR),/)
ifeq ($(DESTDIR),)
	tests/setup/install-deps.sh pacemaker-cli-utils
	# The alert agent's spool, as the packages' tmpfiles.d entry makes it (hacluster comes with
	# Pacemaker).
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/hastack.conf
	crm_resource --list-agents ocf:hastack
endif

# The whole stack on a two-node Pacemaker cluster of namespaces on this machine (README, "The lab").
lab: install
	/usr/sbin/hastack lab up

test-deps:
	tests/setup/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Every fuzz target built and run for a few seconds over its seeds and regression inputs
# (fuzz/run.sh installs cargo-fuzz when it is missing; FUZZING.md).
fuzz-smoke:
	fuzz/run.sh --smoke

# Unit, agent, conformance tests: one nextest process per test suits namespace and service tests.
test: test-deps lint fuzz-smoke
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

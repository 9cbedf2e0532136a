# ruleengine: two commands for a fresh Debian 12 machine, as root.
#   make demo   set up, lint the example rules, run the engine on the example pcap
#   make test   set up, then ruff + mypy + the whole pytest suite (kernel tests included when root)
# Set-up is idempotent: apt packages, the venv and the eBPF objects are only (re)built when missing
# or out of date.

SHELL := /bin/bash
PY_SYS ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.stamps

APT_PACKAGES := python3 python3-venv python3-dev gcc make pkg-config \
	clang-14 libbpf-dev libbpf1 python3-bpfcc \
	libnetfilter-queue-dev iptables iproute2 procps libmagic1 \
	nginx-light openssl curl dnsmasq-base dnsutils openssh-client openssh-server tcpdump \
	redis-server

.PHONY: setup apt venv bpf demo test lint typecheck check bench fuzz clean

setup: apt venv bpf

apt: $(STAMP)/apt
$(STAMP)/apt: Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "apt: all packages present"; fi
	@mkdir -p $(STAMP) && touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml setup.py $(STAMP)/apt
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,hyperscan,nfq,redis,magic,plot,hunt]'
	@# BCC is Debian's python3-bpfcc (the PyPI package named "bcc" is unrelated); it is pure Python
	@# over ctypes, so the venv sees it through a symlink.
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
		ln -sfn /usr/lib/python3/dist-packages/bcc $$site/bcc
	@mkdir -p $(STAMP) && touch $@

bpf: $(STAMP)/apt
	@$(MAKE) -s -C bpf

demo: setup
	$(VENV)/bin/ruleengine lint examples/rules/
	$(VENV)/bin/ruleengine run -r examples/pcaps/http-demo.pcap -S examples/rules/demo.rules -l examples/out
	@echo "--- examples/out/eve.json (alerts) ---"
	@grep '"event_type":"alert"' examples/out/eve.json | head -n 20

lint: venv
	$(VENV)/bin/ruff check ruleengine capture_backends grammar bpf tests bench

typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck

test: setup check
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) bench/rules_load.py

# Long fuzz runs (tests/fuzz/): FUZZ_CASES per target (default 1M), coverage-guided under atheris
# (installed here on first use), reproducers in tests/fuzz/crashes/ (replayed by the test suite).
# FUZZ_TARGETS=name... limits the targets (python -m tests.fuzz --list), FUZZ_JOBS runs several at once.
FUZZ_CASES ?= 1000000
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?=
fuzz: venv
	@$(PY) -c 'import atheris' 2>/dev/null || $(PIP) install -q atheris || \
		echo "fuzz: atheris did not install; using the built-in mutation engine"
	nice -n 19 $(PY) -m tests.fuzz --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

clean:
	rm -rf build *.egg-info examples/out .pytest_cache .mypy_cache .ruff_cache
	@$(MAKE) -s -C bpf clean

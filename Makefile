# voicedesk: `make dev` runs the whole stack locally, `make test` runs every test.
# Both install what they need first and are safe to re-run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

LIVEKIT_SERVER_VERSION := v1.13.5
# livekit-sip: the newest tag the Go module proxy serves here. The checksum database does not
# know it, so the module's hash is pinned below and checked before building.
LIVEKIT_SIP_VERSION := v1.0.0
LIVEKIT_SIP_SUM := h1:o7XEcZHFvaC0R2vqYhGb6aTv9Npe5uLEFhHcDRfPk9U=
# Our fixes to it (third_party/livekit-sip/README.md); the build's name carries their hash.
LIVEKIT_SIP_PATCHES := $(sort $(wildcard third_party/livekit-sip/*.patch))
LIVEKIT_SIP_BUILD := $(LIVEKIT_SIP_VERSION)-$(shell cat $(LIVEKIT_SIP_PATCHES) | sha256sum | cut -c1-12)
# Built tools are cached outside the checkout, so a fresh clone on the same machine reuses them.
CACHE_DIR ?= $(HOME)/.cache/voicedesk
TOOLS_BIN := $(CACHE_DIR)/bin
# Speech fixtures, console mode, Redis + the softphone for SIP, livekit-sip's cgo libraries, and
# Chromium for the browser tests (driven by PyPI playwright; it never downloads a browser).
APT_PACKAGES := espeak-ng sox tmux libportaudio2 redis-server baresip-core \
	pkg-config libopus-dev libopusfile-dev libsoxr-dev chromium
VENV := .venv

export PATH := $(TOOLS_BIN):$(CURDIR)/node_modules/.bin:$(HOME)/.local/bin:$(PATH)

.PHONY: help setup dev test bench lint system-packages python-deps node-deps web livekit-server livekit-sip clean

help:
	@echo "make dev    run the whole stack locally (LiveKit, Postgres, Auth emulator, token server, agent)"
	@echo "make test   install what is needed and run every test"
	@echo "make bench  benchmarks; JSON results in bench/results/"
	@echo "make lint   ruff"
	@echo "make web    build the browser client (web/src -> web/dist)"

setup: system-packages python-deps node-deps web livekit-server livekit-sip

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

python-deps:
	@command -v uv >/dev/null || python3 -m pip install --quiet --user uv
	uv sync --frozen --quiet

node-deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser client, served by the token server at /: a strict type check (tsc --noEmit), then
# esbuild bundles web/src with livekit-client and Firebase into web/dist. Rebuilt only when a
# source or the npm lock changes; a TypeScript error fails the build, and so make.
WEB_SOURCES := $(wildcard web/src/*.ts) web/index.html web/style.css web/tsconfig.json

web: node-deps web/dist/index.html

web/dist/index.html: $(WEB_SOURCES) web/src node_modules/.package-lock.json
	@npm run --silent build:web || { echo "make web: the browser client did not build (errors above)" >&2; exit 1; }
	@echo "web client built in web/dist"

livekit-server: $(TOOLS_BIN)/livekit-server-$(LIVEKIT_SERVER_VERSION)

$(TOOLS_BIN)/livekit-server-$(LIVEKIT_SERVER_VERSION):
	@command -v go >/dev/null || { echo "Go is required to build livekit-server (https://go.dev/dl)"; exit 1; }
	mkdir -p $(TOOLS_BIN) $(CACHE_DIR)/go-build
	GOBIN=$(CACHE_DIR)/go-build go install github.com/livekit/livekit-server/cmd/server@$(LIVEKIT_SERVER_VERSION)
	install -m 0755 $(CACHE_DIR)/go-build/server $(TOOLS_BIN)/livekit-server
	$(TOOLS_BIN)/livekit-server --version | grep -q "$(LIVEKIT_SERVER_VERSION:v%=%)"
	@touch $@

livekit-sip: $(TOOLS_BIN)/livekit-sip-$(LIVEKIT_SIP_BUILD)

# Built like `go install`, from the module's own go.mod and go.sum, with our patches applied to a
# copy of its source; `go install` itself stops on the deprecation lookup, which needs the
# version list the proxy does not serve.
$(TOOLS_BIN)/livekit-sip-$(LIVEKIT_SIP_BUILD): $(LIVEKIT_SIP_PATCHES) | system-packages
	@command -v go >/dev/null || { echo "Go is required to build livekit-sip (https://go.dev/dl)"; exit 1; }
	mkdir -p $(TOOLS_BIN) $(CACHE_DIR)/src
	info=$$(cd /tmp && GONOSUMDB=github.com/livekit/sip GOFLAGS=-mod=mod go mod download -json github.com/livekit/sip@$(LIVEKIT_SIP_VERSION)); \
	sum=$$(echo "$$info" | sed -n 's/.*"Sum": "\(.*\)".*/\1/p'); dir=$$(echo "$$info" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	[ "$$sum" = "$(LIVEKIT_SIP_SUM)" ] || { echo "livekit-sip $(LIVEKIT_SIP_VERSION): hash $$sum, expected $(LIVEKIT_SIP_SUM)"; exit 1; }; \
	src=$(CACHE_DIR)/src/livekit-sip-$(LIVEKIT_SIP_BUILD); rm -rf "$$src"; cp -r "$$dir" "$$src"; chmod -R u+w "$$src"; \
	for p in $(LIVEKIT_SIP_PATCHES); do git -C "$$src" apply --verbose "$(CURDIR)/$$p"; done; \
	cd "$$src" && CGO_ENABLED=1 go build -trimpath -o $(TOOLS_BIN)/livekit-sip ./cmd/livekit-sip && \
	CGO_ENABLED=1 go test -count=1 -run VoicedeskPatch ./pkg/sip/
	$(TOOLS_BIN)/livekit-sip --help >/dev/null
	@touch $@

dev: setup
	uv run --frozen voicedesk dev

test: setup
	uv run --frozen pytest

bench: setup
	uv run --frozen --group bench python -m bench.kb_eval
	uv run --frozen --group bench python -m bench.kb_search
	uv run --frozen --group bench python -m bench.token_endpoint
	uv run --frozen --group bench python -m bench.first_greeting
	uv run --frozen --group bench python -m bench.turn_latency
	uv run --frozen --group bench python -m bench.capacity
	uv run --frozen --group bench python -m bench.long_call
	uv run --frozen --group bench python -m bench.report

lint: python-deps
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache web/dist

# qrlogin — sign in to a desktop app by scanning a QR code with your phone.
#
#   make run    build and start the server (demo accounts) and the desktop app
#   make test   vet and run every test (race detector on)
#
# Both install the Debian/Ubuntu packages they need when they are missing.

SHELL := /bin/bash
GO    ?= go
export PATH := $(PATH):/usr/local/go/bin
export LANG ?= en_US.UTF-8

VERSION := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
LDFLAGS := -s -w -X main.version=$(VERSION)

ADDR    ?= :8080
PORT    := $(lastword $(subst :, ,$(ADDR)))
DB      ?= qrlogin.db
SERVER  ?= http://127.0.0.1:$(PORT)

# Debian packages: building the desktop app (Fyne needs cgo and these headers)
BUILD_PKGS := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
              libxinerama-dev libxi-dev libxxf86vm-dev
# ... and what the tests drive: a virtual X display, headless Chromium, a
# keyring on a private D-Bus, screenshots, fonts for the Chinese page, and
# PostgreSQL (the tests start a throwaway cluster of their own).
TEST_PKGS  := xvfb xauth x11-apps imagemagick zbar-tools chromium dbus dbus-x11 gnome-keyring \
              fonts-noto-cjk fonts-dejavu-core postgresql

.PHONY: run test build server desktop deps test-deps vet bench fuzz clean

build: server desktop

server:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/qrlogin-server ./server/cmd/qrlogin-server

desktop: deps
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/qrlogin-desktop ./desktop

deps:
	@$(call install_pkgs,$(BUILD_PKGS))

test-deps: deps
	@$(call install_pkgs,$(TEST_PKGS))

# install_pkgs installs the missing Debian packages of $(1) with apt-get
# (through sudo when not root); elsewhere it says what to install.
define install_pkgs
missing=""; \
if command -v dpkg-query >/dev/null 2>&1; then \
  for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
  done; \
  if [ -n "$$missing" ]; then \
    echo "Installing system packages:$$missing"; \
    sudo=""; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
  fi; \
else \
  echo "Not a Debian/Ubuntu system: install the equivalents of: $(1)"; \
fi
endef

run: build
	@set -euo pipefail; \
	bin/qrlogin-server serve --demo --addr '$(ADDR)' --db '$(DB)' & srv=$$!; \
	desk=""; \
	trap '[ -n "$$desk" ] && kill $$desk 2>/dev/null && wait $$desk 2>/dev/null; kill $$srv 2>/dev/null; wait 2>/dev/null; exit 0' INT TERM; \
	for i in $$(seq 1 100); do \
	  (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null && break; \
	  kill -0 $$srv 2>/dev/null || { echo "the server did not start"; exit 1; }; \
	  sleep 0.1; \
	done; \
	if [ -z "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
	  echo "No display: the server runs alone (Ctrl-C stops it). Start the desktop app elsewhere with: bin/qrlogin-desktop --server <server URL>"; \
	  wait $$srv; exit 0; \
	fi; \
	bin/qrlogin-desktop --server '$(SERVER)' & desk=$$!; \
	echo "Desktop app started against $(SERVER). Ctrl-C stops both."; \
	wait $$desk || true; kill $$srv 2>/dev/null; wait $$srv 2>/dev/null || true

vet:
	$(GO) vet ./...

# The keyring tests need a D-Bus session with an unlocked gnome-keyring;
# dbus-run-session gives them a private one that ends with the tests, and a
# throwaway XDG_DATA_HOME keeps it away from the developer's own keyring.
# Stack sizes are measured without the race detector, which changes them.
test: test-deps vet
	keyrings=$$(mktemp -d) && trap 'rm -rf "$$keyrings"' EXIT && \
	XDG_DATA_HOME=$$keyrings dbus-run-session -- bash -c 'echo -n qrlogin-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; \
	  $(GO) test -race -timeout 20m ./...'
	$(GO) test -count=1 -run TestHeldStreamsParkOnSmallStacks ./server/httpapi

# A short run of every load scenario (each against a fresh server) and the
# hot-path Go benchmarks, printed as one table; docs/PERFORMANCE.md has the
# full runs and the figures.
bench: server
	$(GO) run ./server/cmd/qrlogin-load bench --server-bin bin/qrlogin-server --go $(GO)

# Every fuzz target, as package:Target. `make fuzz` runs each for FUZZTIME
# (an input that fails lands in the package's testdata/fuzz); FUZZFLAGS
# adds go test flags, e.g. -parallel=1. Plain `go test` runs their seeds.
FUZZTIME     ?= 30s
FUZZFLAGS    ?=
FUZZ_TARGETS := \
	./server/httpapi:FuzzLoginBody \
	./shared/client:FuzzEventStream \
	./server/httpapi:FuzzCookieLoginBody \
	./server/httpapi:FuzzRefreshBody \
	./server/httpapi:FuzzLogoutBody \
	./server/httpapi:FuzzCreateSessionBody \
	./server/httpapi:FuzzPathValue \
	./server/httpapi:FuzzAuthorization \
	./server/httpapi:FuzzPhoneCookie \
	./server/httpapi:FuzzClientIP \
	./server/httpapi:FuzzCleanField \
	./server/auth:FuzzVerify \
	./server/auth:FuzzVerifyMutated \
	./server/auth:FuzzNormalizeUserCode \
	./server/lanaddr:FuzzSameNetwork \
	./mobile-web:FuzzLanguage \
	./server/oauth:FuzzEndpoints

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $(FUZZFLAGS) "$${t%%:*}"; \
	done

clean:
	rm -rf bin dist

include packaging.mk

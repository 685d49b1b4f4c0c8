# packaging.mk: release packages, included from the Makefile.
#
#   make package         every Linux and Windows artifact, and SHA256SUMS, in dist/
#   make package-darwin  the macOS app as a .dmg (on a Mac with the Xcode command-line tools)
#   make package-check   build the .debs and the Windows installer and verify them (CI)
#
# The version is FyneApp.toml's, stamped into every binary (--version) and
# package name. Windows executables are Authenticode-signed when SIGN_CERT and
# SIGN_KEY are given (see desktop/packaging/sign.sh for the other SIGN_ options).
# The tools (fyne, nfpm, go-winres) are `go install`ed at pinned versions into
# bin/tools, so go.mod is untouched; Debian packages: PACKAGE_PKGS.

# Included before or after the Makefile's own targets, this file leaves its
# default goal alone (restored at the end).
packaging_default_goal := $(.DEFAULT_GOAL)

VERSION    ?= $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
APP_BUILD  := $(shell sed -n 's/^Build *= *\([0-9]*\).*/\1/p' FyneApp.toml)
APP_ID     := $(shell sed -n 's/^ID *= *"\(.*\)"/\1/p' FyneApp.toml)
APP_ICON   := $(shell sed -n 's/^Icon *= *"\(.*\)"/\1/p' FyneApp.toml)
# Windows wants four numbers: x.y.z.build.
VERSION4   := $(shell echo '$(VERSION)' | awk -F. '{printf "%d.%d.%d", $$1, $$2, $$3}').$(or $(APP_BUILD),0)

DIST       ?= dist
PKG_WORK   := bin/package
SNAPSHOT   := $(PKG_WORK)/src
MAINTAINER ?= qrlogin developers <https://github.com/qrlogin/qrlogin>
PKG_LDFLAGS := -s -w -X main.version=$(VERSION)

# Overridable, e.g. by the check, which builds only what it verifies.
SERVER_PLATFORMS ?= linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64
SERVER_PKG_ARCHES ?= amd64 arm64
PKG_FORMATS ?= deb rpm

# Pinned tools. nfpm v2.46+ need go.digitalxero.dev modules that the Go proxy
# does not serve, so v2.45.2. fyne.io/tools v1.7.4 is built on its own (it
# would move go.mod to fyne v2.8 as a `go get -tool`); it packages our v2.7.1 app.
FYNE_TOOLS_VERSION := v1.7.4
NFPM_VERSION       := v2.45.2
GOWINRES_VERSION   := v0.3.3
TOOLS    := $(CURDIR)/bin/tools
FYNE     := $(TOOLS)/fyne-$(FYNE_TOOLS_VERSION)/fyne
NFPM     := $(TOOLS)/nfpm-$(NFPM_VERSION)/nfpm
GOWINRES := $(TOOLS)/go-winres-$(GOWINRES_VERSION)/go-winres

# Debian packages for `make package` (on top of the Makefile's BUILD_PKGS)
# and for verifying the results in `make package-check`.
PACKAGE_PKGS := gcc-mingw-w64-x86-64 nsis xz-utils file
CHECK_PKGS   := rpm p7zip-full osslsigncode openssl binutils xvfb desktop-file-utils systemd

SIGNING := $(and $(SIGN_CERT),$(SIGN_KEY))
SIGN_ENV = SIGN_CERT='$(abspath $(SIGN_CERT))' SIGN_KEY='$(abspath $(SIGN_KEY))' \
           SIGN_PASS_FILE='$(if $(SIGN_PASS_FILE),$(abspath $(SIGN_PASS_FILE)))' SIGN_TIMESTAMP_URL='$(SIGN_TIMESTAMP_URL)'
SIGN_SH  := $(CURDIR)/desktop/packaging/sign.sh

# Hardening of the C parts (GLFW) of the Linux desktop binary, as `fyne build` does.
LINUX_CGO_ENV := CGO_ENABLED=1 CGO_CFLAGS='-O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fcf-protection' \
                 CGO_LDFLAGS='-Wl,-z,relro,-z,now'
WINDOWS_CGO_ENV := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc CXX=x86_64-w64-mingw32-g++

# sha256sum on Linux, shasum on a Mac.
SHA256 := $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')
SUB_MAKE = $(MAKE) --no-print-directory $(addprefix -f ,$(MAKEFILE_LIST))

.PHONY: package package-deps package-server package-linux package-windows package-darwin \
        package-snapshot package-sums package-check

# package: from scratch, so dist/ holds exactly this version's artifacts.
package: package-deps
	rm -rf '$(DIST)'
	@$(SUB_MAKE) package-server package-linux package-windows
	@$(SUB_MAKE) package-sums
	@echo "Artifacts of qrlogin $(VERSION) in $(DIST)/:"; ls -l '$(DIST)'

package-deps: deps
	@$(call install_pkgs,$(PACKAGE_PKGS))

package-sums:
	cd '$(DIST)' && rm -f SHA256SUMS && $(SHA256) $$(ls | LC_ALL=C sort) > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS

# --- tools -------------------------------------------------------------------

$(FYNE):
	GOBIN='$(@D)' GOFLAGS= $(GO) install fyne.io/tools/cmd/fyne@$(FYNE_TOOLS_VERSION)
$(NFPM):
	GOBIN='$(@D)' GOFLAGS= $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
$(GOWINRES):
	GOBIN='$(@D)' GOFLAGS= $(GO) install github.com/tc-hib/go-winres@$(GOWINRES_VERSION)

# --- server: static binaries, .deb/.rpm with the systemd unit -------------------

package-server: | $(NFPM)
	@mkdir -p '$(DIST)'
	@set -e; for p in $(SERVER_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
	  out='$(DIST)'/qrlogin-server-$(VERSION)-$$os-$$arch$$ext; \
	  echo "go build $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(PKG_LDFLAGS)' -o "$$out" ./server/cmd/qrlogin-server; \
	done
	@set -e; for arch in $(SERVER_PKG_ARCHES); do for fmt in $(PKG_FORMATS); do \
	  VERSION='$(VERSION)' ARCH=$$arch MAINTAINER='$(MAINTAINER)' BIN='$(DIST)'/qrlogin-server-$(VERSION)-linux-$$arch \
	    $(NFPM) package -f server/packaging/nfpm.yaml -p $$fmt -t '$(DIST)/'; \
	done; done

# --- desktop: built from a snapshot of the sources --------------------------------
# `fyne package` wants FyneApp.toml in the source folder and the Windows build a
# .syso next to main.go: both go into a copy, never into the working tree.

package-snapshot:
	rm -rf '$(SNAPSHOT)' && mkdir -p '$(SNAPSHOT)'
	tar -cf - --exclude=./.git --exclude=./bin --exclude=./dist --exclude='*.db' --exclude='*.db-*' \
	  --exclude='*.syso' . | tar -xf - -C '$(SNAPSHOT)'
	sed 's|^Icon *=.*|Icon = "$(abspath $(APP_ICON))"|' FyneApp.toml > '$(SNAPSHOT)/desktop/FyneApp.toml'

LINUX_WORK := $(abspath $(PKG_WORK))/linux

# Linux: the binary, `fyne package` turns it into the tarball (with the .desktop
# file from FyneApp.toml), whose files nfpm puts into the .deb and .rpm.
package-linux: package-snapshot | $(FYNE) $(NFPM)
	rm -rf '$(LINUX_WORK)' && mkdir -p '$(LINUX_WORK)/stage/bin' '$(LINUX_WORK)/stage/applications' '$(LINUX_WORK)/tree' '$(DIST)'
	cd '$(SNAPSHOT)' && GOWORK=off $(LINUX_CGO_ENV) $(GO) build -trimpath -tags release \
	  -ldflags '$(PKG_LDFLAGS)' -o '$(LINUX_WORK)/qrlogin-desktop' ./desktop
	cd '$(LINUX_WORK)' && '$(FYNE)' package --os linux --release --executable '$(LINUX_WORK)/qrlogin-desktop' \
	  --src '$(abspath $(SNAPSHOT))/desktop'
	mv '$(LINUX_WORK)'/*.tar.xz '$(DIST)/qrlogin-desktop-$(VERSION)-linux-amd64.tar.xz'
	tar -xJf '$(DIST)/qrlogin-desktop-$(VERSION)-linux-amd64.tar.xz' -C '$(LINUX_WORK)/tree'
	@set -e; cd '$(LINUX_WORK)'; \
	  cp "$$(find tree -path '*/bin/qrlogin-desktop')" stage/bin/; \
	  cp "$$(find tree -name '$(APP_ID).desktop')" stage/applications/; \
	  cp "$$(find tree -name '$(APP_ID).png')" stage/icon.png
	@set -e; size=$$(file -b '$(LINUX_WORK)/stage/icon.png' | sed -n 's/^PNG image data, \([0-9]*\) x \([0-9]*\),.*/\1x\2/p'); \
	  [ -n "$$size" ] || { echo "the icon is not a PNG"; exit 1; }; \
	  for fmt in $(PKG_FORMATS); do \
	    VERSION='$(VERSION)' ARCH=amd64 MAINTAINER='$(MAINTAINER)' STAGE='$(LINUX_WORK)/stage' APP_ID='$(APP_ID)' ICON_SIZE=$$size \
	      $(NFPM) package -f desktop/packaging/nfpm.yaml -p $$fmt -t '$(DIST)/'; \
	  done

WIN_WORK := $(abspath $(PKG_WORK))/windows
WIN_EXE  := $(WIN_WORK)/qrlogin-desktop.exe
SETUP    := qrlogin-desktop-$(VERSION)-windows-amd64-setup.exe

# Windows: resources (icon, manifest, version) from desktop/packaging/winres.json
# as a .syso in the snapshot, a cgo cross-build with MinGW, then the NSIS installer.
package-windows: package-snapshot | $(GOWINRES)
	rm -rf '$(WIN_WORK)' && mkdir -p '$(WIN_WORK)/res' '$(DIST)'
	$(GOWINRES) make --in '$(SNAPSHOT)/desktop/packaging/winres.json' --out '$(SNAPSHOT)/desktop/rsrc' \
	  --arch amd64 --product-version '$(VERSION4)' --file-version '$(VERSION4)'
	cd '$(SNAPSHOT)' && GOWORK=off $(WINDOWS_CGO_ENV) $(GO) build -trimpath -tags release \
	  -ldflags '$(PKG_LDFLAGS) -H=windowsgui' -o '$(WIN_EXE)' ./desktop
	$(if $(SIGNING),$(SIGN_ENV) '$(SIGN_SH)' '$(WIN_EXE)')
	$(GOWINRES) extract --dir '$(WIN_WORK)/res' '$(WIN_EXE)' >/dev/null
	@set -e; ico=$$(find '$(WIN_WORK)/res' -name '*.ico' | head -n 1); [ -n "$$ico" ] || { echo "no icon in the .exe"; exit 1; }; \
	  cp "$$ico" '$(WIN_WORK)/app.ico'
	$(if $(SIGNING),$(SIGN_ENV)) makensis -V2 -DVERSION='$(VERSION)' -DVERSION4='$(VERSION4)' -DEXE='$(WIN_EXE)' \
	  -DICON='$(WIN_WORK)/app.ico' -DOUTFILE='$(abspath $(DIST))/$(SETUP)' -DLICENSE='$(abspath LICENSE)' $(if $(SIGNING),-DSIGN='$(SIGN_SH)') \
	  desktop/packaging/installer.nsi
	cp '$(WIN_EXE)' '$(DIST)/qrlogin-desktop-$(VERSION)-windows-amd64.exe'

# --- macOS (on a Mac; not run by this project's CI) --------------------------------
# A universal (amd64 + arm64) app bundle by `fyne package`, ad-hoc signed, in a
# .dmg. Distributing it to others needs a Developer ID signature and notarisation.
DARWIN_WORK := $(abspath $(PKG_WORK))/darwin
DMG := qrlogin-desktop-$(VERSION)-macos-universal.dmg

package-darwin: package-snapshot | $(FYNE)
	@[ "$$(uname -s)" = Darwin ] || { echo "make package-darwin must run on macOS with the Xcode command-line tools (xcode-select --install)"; exit 1; }
	rm -rf '$(DARWIN_WORK)' && mkdir -p '$(DARWIN_WORK)/dmg' '$(DIST)'
	@set -e; for arch in amd64 arm64; do \
	  echo "go build darwin/$$arch"; \
	  (cd '$(SNAPSHOT)' && GOWORK=off CGO_ENABLED=1 GOOS=darwin GOARCH=$$arch $(GO) build -trimpath -tags release \
	    -ldflags '$(PKG_LDFLAGS)' -o '$(DARWIN_WORK)'/qrlogin-desktop-$$arch ./desktop); \
	done
	lipo -create -output '$(DARWIN_WORK)/qrlogin-desktop' '$(DARWIN_WORK)/qrlogin-desktop-amd64' '$(DARWIN_WORK)/qrlogin-desktop-arm64'
	cd '$(DARWIN_WORK)' && '$(FYNE)' package --os darwin --release --executable '$(DARWIN_WORK)/qrlogin-desktop' \
	  --src '$(abspath $(SNAPSHOT))/desktop'
	codesign --force --deep --sign - '$(DARWIN_WORK)'/*.app
	mv '$(DARWIN_WORK)'/*.app '$(DARWIN_WORK)/dmg/' && ln -s /Applications '$(DARWIN_WORK)/dmg/Applications'
	hdiutil create -volname 'qrlogin $(VERSION)' -srcfolder '$(DARWIN_WORK)/dmg' -ov -format UDZO '$(DIST)/$(DMG)'
	@$(SUB_MAKE) package-sums

# --- check --------------------------------------------------------------------

package-check: package-deps
	@$(call install_pkgs,$(CHECK_PKGS))
	.ci/package-check

.DEFAULT_GOAL := $(packaging_default_goal)

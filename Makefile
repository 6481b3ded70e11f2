# rkt in Rust. `make` builds release binaries and the stage1 image into target/release/;
# `make run` also runs a demo pod; `make test` runs every test (as root).
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
TARGET := x86_64-unknown-linux-gnu
# stage1 and stage2-init run inside the pod's root: static binaries, no NSS.
STATIC_RUSTFLAGS := -C target-feature=+crt-static
STAGE1_IMAGES_DIR ?= $(PREFIX)/lib/rkt/stage1-images
export RKT_STAGE1_IMAGES_DIR := $(STAGE1_IMAGES_DIR)

RELEASE := target/release
STATIC_RELEASE := target/$(TARGET)/release
STATIC_INIT := target/$(TARGET)/init
STAGE1_DIR := target/stage1-image
DEMO_DIR := target/demo-image
DEMO_ACI := target/demo.aci
RKT := $(RELEASE)/rkt
ACTOOL := $(RELEASE)/actool
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

# Debian packages the build, the demo and the tests need.
DEB_PACKAGES := busybox-static containernetworking-plugins iptables
TEST_DEB_PACKAGES := busybox-static crun zstd xz-utils bzip2 gzip golang-go golang-github-appc-spec-dev containernetworking-plugins iptables iproute2 gnupg openssl docker-registry skopeo

.PHONY: all build deps test-deps run test bench install clean stage1 check attack

all: build

build: $(RKT) $(RELEASE)/stage1.aci

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(TEST_DEB_PACKAGES)"

$(RKT): FORCE
	$(CARGO) build --release -p rkt -p aci --bins

$(STATIC_RELEASE)/stage1: FORCE
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --target $(TARGET) -p stage1

$(STATIC_INIT)/stage2-init: FORCE
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --profile init --target $(TARGET) -p stage2-init

# The default stage1 image: one static binary linked under each entrypoint name, plus
# stage2-init, described by a manifest whose annotations name the entrypoints.
$(RELEASE)/stage1.aci: $(STATIC_RELEASE)/stage1 $(STATIC_INIT)/stage2-init $(RKT) stage1/manifest.json.in stage1/hosts-fallback
	rm -rf $(STAGE1_DIR)
	mkdir -p $(STAGE1_DIR)/rootfs
	cd $(STAGE1_DIR)/rootfs && mkdir -p dev proc sys etc tmp opt/stage2 rkt/status rkt/run && chmod 1777 tmp
	install -m 0755 $(STATIC_RELEASE)/stage1 $(STAGE1_DIR)/rootfs/stage1
	install -m 0755 $(STATIC_INIT)/stage2-init $(STAGE1_DIR)/rootfs/stage2-init
	install -m 0644 stage1/hosts-fallback $(STAGE1_DIR)/rootfs/etc/hosts-fallback
	for e in init enter gc stop; do ln -s stage1 $(STAGE1_DIR)/rootfs/$$e; done
	sed 's/@VERSION@/$(VERSION)/' stage1/manifest.json.in > $(STAGE1_DIR)/manifest
	$(ACTOOL) build --overwrite --compression none $(STAGE1_DIR) $@

stage1: $(RELEASE)/stage1.aci

# What hostile test images run inside pods (tests/attack): static, like everything in a pod.
ATTACK := $(STATIC_RELEASE)/pod-attack
attack: FORCE
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --target $(TARGET) -p pod-attack

# A demo image built locally from Debian's busybox-static.
$(DEMO_ACI): $(RKT) Makefile
	rm -rf $(DEMO_DIR)
	mkdir -p $(DEMO_DIR)/rootfs/bin $(DEMO_DIR)/rootfs/etc
	install -m 0755 /bin/busybox $(DEMO_DIR)/rootfs/bin/busybox
	for a in $$(/bin/busybox --list); do [ "$$a" = busybox ] || ln -sf busybox $(DEMO_DIR)/rootfs/bin/$$a; done
	printf 'root:x:0:0:root:/root:/bin/sh\n' > $(DEMO_DIR)/rootfs/etc/passwd
	printf 'root:x:0:\n' > $(DEMO_DIR)/rootfs/etc/group
	printf '%s\n' \
	  '{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/hello",' \
	  ' "labels":[{"name":"version","value":"1.0.0"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],' \
	  ' "app":{"exec":["/bin/sh","-c","echo Hello from pod $$AC_APP_NAME on $$(hostname); echo pid 1 is: $$(cat /proc/1/comm); ps"],' \
	  '        "user":"0","group":"0"}}' > $(DEMO_DIR)/manifest
	$(ACTOOL) build --overwrite --compression gzip $(DEMO_DIR) $@

run: deps build $(DEMO_ACI)
	$(RKT) --insecure-options=image run $(DEMO_ACI)
	$(RKT) list
	$(RKT) gc --grace-period=0s

test: test-deps build attack
	$(CARGO) test --workspace --release -- --test-threads=2

bench: test-deps build
	$(CARGO) run --release -p rkt-tests --bin rkt-bench

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

install: build
	install -D -m 0755 $(RKT) $(DESTDIR)$(PREFIX)/bin/rkt
	install -D -m 0644 $(RELEASE)/stage1.aci $(DESTDIR)$(STAGE1_IMAGES_DIR)/stage1.aci

clean:
	$(CARGO) clean

FORCE:

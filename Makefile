# Thin wrapper around scripts/setup.sh and Meson. See README.md.
#   make run   [ARGS="--http"]   set up the machine, build, run snapbackd on ./var
#   make check                   set up the machine, build and run every test twice
#                                (plain -Dwerror=true, then ASan+UBSan); last line: "N passed, N failed"
#   make clean
SHELL := /bin/bash
.DEFAULT_GOAL := build
.NOTPARALLEL:

BUILD_DIR ?= build
SAN_DIR   ?= build-san
STATE_DIR ?= ./var
LISTEN    ?= 127.0.0.1:8443
ARGS      ?=

CHECK_OPTS := -Dwerror=true
SAN_OPTS   := -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true
LSAN_SUPP  := $(CURDIR)/tests/lsan.supp
# Sanitized binaries are 2-3x slower: give their tests more time.
SAN_TEST_ARGS := --timeout-multiplier 3
# Set explicitly so meson test does not substitute its own defaults.
SAN_ENV := SNAPBACK_SKIP_PACKAGE=1 SNAPBACK_SKIP_WEB=1 SNAPBACK_SKIP_HOSTS=1 \
           ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:print_summary=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:print_summary=1 \
           LSAN_OPTIONS=$(if $(wildcard $(LSAN_SUPP)),suppressions=$(LSAN_SUPP):)print_suppressions=0

.PHONY: build setup run check clean

setup:
	@scripts/setup.sh

# Configure $(1) with options $(2): setup when new, configure when it already exists.
meson_configure = if [ -f $(1)/meson-private/coredata.dat ]; then meson configure $(1) $(2); \
                  else meson setup $(1) $(2); fi

build:
	@$(call meson_configure,$(BUILD_DIR),)
	meson compile -C $(BUILD_DIR)

run: setup build
	exec ./$(BUILD_DIR)/src/daemon/snapbackd --state-dir $(STATE_DIR) --listen $(LISTEN) $(ARGS)

# One suite run: $(1) build dir, $(2) meson options, $(3) environment for meson test,
# $(4) extra meson test arguments.
# Never fails itself; writes "<passed> <failed>" to $(1)/check-counts.
# A failed configure/build, or a meson test that fails without a summary, counts as 1 failed.
define run_suite
	@echo "=== $(1): configure + build ($(strip $(2))) ==="
	@mkdir -p $(1); rm -f $(1)/check-counts; \
	if ! { $(call meson_configure,$(1),$(2)); } || ! meson compile -C $(1); then \
	  echo "=== $(1): BUILD FAILED ==="; echo "0 1" > $(1)/check-counts; exit 0; \
	fi; \
	echo "=== $(1): meson test ==="; \
	$(3) meson test -C $(1) --print-errorlogs $(4) 2>&1 | tee $(1)/check.log; rc=$${PIPESTATUS[0]}; \
	awk -v rc=$$rc ' \
	  /^Ok:/              { ok = $$2; seen = 1 } \
	  /^Expected Fail:/   { xf = $$3 } \
	  /^Fail:/            { f  = $$2 } \
	  /^Unexpected Pass:/ { up = $$3 } \
	  /^Timeout:/         { to = $$2 } \
	  END { p = ok + xf; n = f + up + to; if (rc != 0 && n == 0) n = 1; \
	        print p, n > "$(1)/check-counts" }' $(1)/check.log
endef

check: setup
	$(call run_suite,$(BUILD_DIR),$(CHECK_OPTS),)
	$(call run_suite,$(SAN_DIR),$(SAN_OPTS),$(SAN_ENV),$(SAN_TEST_ARGS))
	@cat $(BUILD_DIR)/check-counts $(SAN_DIR)/check-counts | \
	  awk '{ p += $$1; f += $$2 } END { printf "%d passed, %d failed\n", p, f; exit (f > 0) }'

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR) build-bench build-fuzz

# xdpload top-level Makefile. Each folder describes its own targets in a
# build.mk fragment included here (one make, one dependency graph, so -j is
# safe); this file holds the shared flags and the user-facing targets.
#
#   make deps     install Debian packages, fetch lwIP (idempotent, needs root)
#   make          build everything into build/
#   make test     run the test suite (runs deps first on a fresh machine)
#   make demo     ping-pong demo across a veth pair, kernel vs xdpload
#   make bench    side-by-side benchmarks (bench/results/)
#   make install  PREFIX=/usr/local DESTDIR=
#   make asan     the library under AddressSanitizer and UBSan, in build/asan/
#   make test-asan  the shim and server tests with that library
#                 (run with LD_PRELOAD="$(gcc -print-file-name=libasan.so) build/asan/libxdpload.so")
#   make ubsan    the library under UBSan alone, in build/ubsan/
#   make test-ubsan  the whole suite with that library (TESTS=regex for some)

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
JOBS    ?= 2

CXX      ?= g++
CC       ?= gcc
CLANG    ?= clang
CXXSTD   := -std=c++20
OPT      ?= -O2
WARN     := -Wall -Wextra -Wno-missing-field-initializers
CPPFLAGS := -I. -D_GNU_SOURCE
# STAGE_TRACE=1: stage marks for latency work (rings/stage_trace.h); give
# such a build its own BUILD directory.
STAGE_TRACE ?= 0
ifeq ($(STAGE_TRACE),1)
CPPFLAGS += -DXDPLOAD_STAGE_TRACE=1
endif
# Library code: no exceptions or RTTI (the shim runs inside C programs and
# must never unwind through their frames).
# SANITIZE: sanitizer flags for the library (make asan sets them).
SANITIZE ?=
LIB_CXXFLAGS := $(CXXSTD) $(OPT) -g $(WARN) -fPIC -fno-exceptions -fno-rtti \
                -fvisibility=hidden $(SANITIZE)
TEST_CXXFLAGS := $(CXXSTD) $(OPT) -g $(WARN)

DEPS_STAMP := $(BUILD)/.deps-done
LWIP_DIR   := $(BUILD)/lwip-src/lwip-2.1.3+dfsg1

.DEFAULT_GOAL := all
ALL :=

include family/build.mk
include rings/build.mk
include stack/build.mk
include shim/build.mk
include tools/build.mk
include ext/build.mk
include tests/build.mk
include bench/build.mk

all: $(ALL)

$(DEPS_STAMP): tools/install-deps.sh
	tools/install-deps.sh $(BUILD)
	@mkdir -p $(@D) && touch $@

.PHONY: all deps test demo bench install clean asan test-asan ubsan test-ubsan
deps:
	tools/install-deps.sh $(BUILD)
	@mkdir -p $(BUILD) && touch $(DEPS_STAMP)

# test and demo work on a fresh machine: install what is missing, then build.
test: | $(DEPS_STAMP)
	$(MAKE) -j$(JOBS) all
	tests/run.sh $(BUILD)

demo: | $(DEPS_STAMP)
	$(MAKE) -j$(JOBS) all
	tools/demo.sh $(BUILD)

bench: | $(DEPS_STAMP)
	$(MAKE) -j$(JOBS) all
	bench/run.sh $(BUILD)

# The preloaded library built with AddressSanitizer and UBSan, beside the
# normal build (same lwIP source and dependencies).
asan: | $(DEPS_STAMP)
	$(MAKE) -j$(JOBS) BUILD=$(BUILD)/asan DEPS_STAMP=$(abspath $(DEPS_STAMP)) \
	  LWIP_DIR=$(abspath $(LWIP_DIR)) OPT=-O1 \
	  SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" $(BUILD)/asan/libxdpload.so

# The shim and server tests (or TESTS=regex) with the library under ASan
# and UBSan, any report failing its test. Not part of make test: slower.
test-asan: asan
	$(MAKE) -j$(JOBS) all
	XL_PRELOAD="$$(gcc -print-file-name=libasan.so) $(abspath $(BUILD))/asan/libxdpload.so" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  tests/run.sh $(BUILD) '$(or $(TESTS),^(shim|servers)-)'

# The preloaded library under UBSan alone. UBSan intercepts no allocator
# (ASan's preloaded runtime does, which hangs curl at start in glibc's
# setlocale lock before any of our code runs), so the whole suite can run
# under it: every test (the wrapper too, through XDPLOAD_BUILD), any report
# aborting the program and failing its test; the reports also land in
# $(BUILD)/ubsan/reports.*.
ubsan: | $(DEPS_STAMP)
	$(MAKE) -j$(JOBS) BUILD=$(BUILD)/ubsan DEPS_STAMP=$(abspath $(DEPS_STAMP)) \
	  LWIP_DIR=$(abspath $(LWIP_DIR)) OPT=-O1 \
	  SANITIZE="-fsanitize=undefined -fno-omit-frame-pointer" $(BUILD)/ubsan/libxdpload.so

test-ubsan: ubsan
	$(MAKE) -j$(JOBS) all
	rm -f $(BUILD)/ubsan/reports.*
	for t in xdpload-options xdpload-broker xdpload-tune xdpload-stat; do \
	  ln -sf ../$$t $(BUILD)/ubsan/$$t; done
	XL_PRELOAD="$(abspath $(BUILD))/ubsan/libxdpload.so" XDPLOAD_BUILD=$(BUILD)/ubsan \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(abspath $(BUILD))/ubsan/reports \
	  tests/run.sh $(BUILD) '$(or $(TESTS),.)'
	@if ls $(BUILD)/ubsan/reports.* >/dev/null 2>&1; then \
	  echo "UBSan reports:"; cat $(BUILD)/ubsan/reports.*; exit 1; fi

install: all
	tools/install.sh $(BUILD) $(PREFIX) $(DESTDIR)

clean:
	rm -rf $(BUILD)

# Automatic header dependencies.
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

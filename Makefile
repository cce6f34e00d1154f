# grepop: build, tests, install. See README.md.
#
#   make            build everything into build/
#   make check      install missing packages, build, run every test, then
#                   again against an AddressSanitizer/UBSan build
#   make demo       run the POP end to end on the built-in demo lab
#   make SAN=1 BUILD=build-asan   a sanitizer build by hand

BUILD ?= build
SAN ?=
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc

PKGS := liburcu liburcu-cds libnftnl libmnl libconfig libzmq libsystemd \
	libmicrohttpd jansson libcurl libcap libxdp libbpf

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wpointer-arith -Wvla -Wno-unused-parameter -Wundef \
	-Wcast-align -Wimplicit-fallthrough -Wno-format-truncation
OPT := -O2
ifeq ($(SAN),1)
OPT := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(SAN),thread)
OPT := -O1 -fsanitize=thread -fno-omit-frame-pointer
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS := -std=gnu11 -g $(OPT) $(WARN) -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(filter -fsanitize=%,$(OPT)) $(EXTRA_LDFLAGS)
LDLIBS := $(PKG_LIBS) -lcsv -lpthread -lm

PROGRAMS := gatewayd healthd statsd grepopctl

# Code shared by every process: the library folder and the shared memory.
LIB_SRC := $(wildcard lib/*.c shm/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))

# Each program's folder is one archive (all but main.c) and one binary, so
# unit tests link exactly the modules they test.
define program
$(1)_SRC := $$(wildcard $(1)/*.c)
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRC))
$(1)_MODS := $$(filter-out $(BUILD)/obj/$(1)/main.o,$$($(1)_OBJ))
$(BUILD)/lib$(1).a: $$($(1)_MODS)
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^ $$(if $$^,,$(BUILD)/obj/empty.o)
$(BUILD)/$(1): $(BUILD)/obj/$(1)/main.o $(BUILD)/lib$(1).a $(BUILD)/libgrepop.a
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program,$(p))))

PROGRAM_LIBS := $(foreach p,$(PROGRAMS),$(BUILD)/lib$(p).a)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_SRC := $(wildcard tests/lab/*.c tests/bench/*.c)
TOOL_BIN := $(patsubst %.c,$(BUILD)/tools/%,$(notdir $(TOOL_SRC)))

.PHONY: all tests check check-tsan tsan-tests check-run deps demo install clean bench \
	bench-smoke fuzz fuzz-build soak
.DEFAULT_GOAL := all

all: $(addprefix $(BUILD)/,$(patsubst %/main.c,%,$(wildcard $(addsuffix /main.c,$(PROGRAMS))))) $(TOOL_BIN)

tests: all $(UNIT_BIN)

$(BUILD)/obj/empty.o:
	@mkdir -p $(@D)
	echo 'typedef int grepop_empty;' | $(CC) $(CFLAGS) -x c -c -o $@ -

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# gateway.io = "xdp": the XDP program, built for the BPF target and embedded
# in libgatewayd; only gatewayd's main.c loads it (gatewayd/xdp.c), so the
# tests and fuzzers never pull it in.
BPF_CFLAGS := -O2 -g -target bpf -Wall -Wextra -Werror -I/usr/include/$(shell $(CC) -dumpmachine)
$(BUILD)/obj/gatewayd/bpf/gre.bpf.o: gatewayd/bpf/gre.bpf.c
	@mkdir -p $(@D)
	clang $(BPF_CFLAGS) -c -o $@ $<
$(BUILD)/obj/gatewayd/bpf/embed.o: gatewayd/bpf/embed.S $(BUILD)/obj/gatewayd/bpf/gre.bpf.o
	$(CC) -c -DBPF_OBJECT='"$(BUILD)/obj/gatewayd/bpf/gre.bpf.o"' -o $@ $<
$(BUILD)/libgatewayd.a: $(BUILD)/obj/gatewayd/bpf/embed.o

# The dashboard is built into statsd (statsd/www.c includes the files).
$(BUILD)/obj/statsd/www.o: $(wildcard statsd/www/*)

$(BUILD)/libgrepop.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(PROGRAM_LIBS): | $(BUILD)/obj/empty.o

# tests/unit/test_PROGRAM_*.c link that program's modules; the others only
# the shared library.
test_lib = $(firstword $(foreach p,$(PROGRAMS),$(if $(filter test_$(p)_%,$(1)),$(BUILD)/lib$(p).a)))

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $$(call test_lib,test_$$*) $(BUILD)/libgrepop.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcunit

$(BUILD)/tools/%: $(BUILD)/obj/tests/lab/%.o $(BUILD)/libgrepop.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/bench/%.o $(PROGRAM_LIBS) $(BUILD)/libgrepop.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(PROGRAM_LIBS) $(BUILD)/libgrepop.a $(LDLIBS)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c, README.md "Fuzzing"), built with
# clang into build-fuzz/ against every module but the mains, all compiled
# with the sanitizers; the other tests/fuzz/*.c are fixtures they share.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# (clang has no -Wformat-truncation to turn off.)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer $(filter-out -Wno-format-truncation,$(WARN)) -D_GNU_SOURCE -I. \
	$(PKG_CFLAGS)
FUZZ_HARNESS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_HARNESS))
FUZZ_SRC := $(LIB_SRC) $(foreach p,$(PROGRAMS),$(filter-out $(p)/main.c,$($(p)_SRC))) \
	$(filter-out $(FUZZ_HARNESS),$(wildcard tests/fuzz/*.c))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

# liburcu's caa_container_of casts through char *, which clang's -Wcast-align
# flags at every expansion (the nodes are members of properly aligned
# structs): off in the files that use it, on everywhere else.
FUZZ_URCU_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,\
	$(shell grep -l 'caa_container_of\|cds_lfht_for_each_entry' $(FUZZ_SRC)))
$(FUZZ_URCU_OBJ): FUZZ_CFLAGS += -Wno-cast-align

$(FUZZ_BUILD)/libgrepop-fuzz.a: $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_SRC))
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libgrepop-fuzz.a
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

# Fuzz each harness (or those named in FUZZ_ONLY, e.g. "gre tun") for
# FUZZ_SECONDS; new inputs and crashes stay in build-fuzz/.
fuzz: fuzz-build
	@tests/fuzz/run.sh fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_ONLY)

deps:
	@scripts/deps.sh --install

# The README's test command. Runs the whole suite on the normal build, then
# on the AddressSanitizer/UBSan build, replays every fuzz corpus and crash
# through the harnesses, and runs the threaded tests under ThreadSanitizer.
check:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 tests
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread tsan-tests
	@tests/run.sh build build-asan $(FUZZ_BUILD) build-tsan

# ThreadSanitizer on the unit tests whose threads share memory: identity
# reads under a writer (test_shm), workers on the RCU tables under the
# control thread (test_gatewayd_rcu; liburcu's orderings are stated to TSan
# by gatewayd/rcu_tsan.h and tests/tsan.supp), a worker thread's read loop
# (test_gatewayd_tso), healthd's checks against a server thread
# (test_healthd_probe).
TSAN_TESTS := test_shm test_gatewayd_rcu test_gatewayd_tso test_healthd_probe
tsan-tests: $(addprefix $(BUILD)/tests/,$(TSAN_TESTS))

check-tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread tsan-tests
	@tests/run.sh build-tsan

# One build only, for iterating: make check-run BUILD=build
check-run: tests
	@tests/run.sh $(BUILD)

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/demo.py --build $(BUILD)

# The data-plane benchmark (root: network namespaces): gatewayd against the
# naive forwarder in the same lab, figures in $(BUILD)/bench.json. The smoke
# mode takes seconds; the end-to-end suite runs it.
bench: all
	/usr/bin/python3 tests/bench/bench.py --build $(BUILD)

# Minutes of load and change on one POP; not part of make check.
soak: all
	/usr/bin/python3 tests/soak/soak.py --build $(BUILD)

bench-smoke: all
	/usr/bin/python3 tests/bench/bench.py --build $(BUILD) --smoke

# Installs what `all` built (`make -o all install BUILD=DIR` installs an
# existing build as it is). The system user comes from the sysusers.d file,
# created at once unless installing into a DESTDIR. The configuration and
# the sites file are never overwritten.
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/gatewayd $(BUILD)/healthd $(BUILD)/statsd $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(BUILD)/grepopctl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)/etc/grepop $(DESTDIR)/lib/systemd/system $(DESTDIR)/var/lib/grepop
	test -e $(DESTDIR)/etc/grepop/grepop.conf || \
		install -m 0644 etc/grepop.conf $(DESTDIR)/etc/grepop/grepop.conf
	test -e $(DESTDIR)/var/lib/grepop/sites.csv || \
		install -m 0644 etc/sites-empty.csv $(DESTDIR)/var/lib/grepop/sites.csv
	for u in systemd/*.service systemd/*.target; do \
		[ -e "$$u" ] || continue; \
		sed 's|@PREFIX@|$(PREFIX)|g' "$$u" > $(DESTDIR)/lib/systemd/system/$$(basename "$$u"); \
	done
	install -D -m 0644 systemd/grepop.sysusers $(DESTDIR)/usr/lib/sysusers.d/grepop.conf
	[ -n "$(DESTDIR)" ] || systemd-sysusers /usr/lib/sysusers.d/grepop.conf
	for m in man/*.[1-8]; do \
		[ -e "$$m" ] || continue; \
		install -D -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$$(basename "$$m"); \
	done

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

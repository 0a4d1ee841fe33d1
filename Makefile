# SPDX-License-Identifier: LGPL-2.1-or-later
# aadguest: one entry point. make | make check | make demo | make bench | make install
PREFIX ?= /usr
LIBDIR ?= $(PREFIX)/lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo .)
SBINDIR ?= $(PREFIX)/sbin
PAMDIR ?= $(LIBDIR)/security
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=
# Modules are 0644 on Debian; Fedora installs them 0755 (the spec says MODMODE=0755).
MODMODE ?= 0644
# `aadguest --version`: the upstream version of packaging/debian/changelog.
VERSION := $(shell head -n 1 packaging/debian/changelog 2>/dev/null | cut -d ' ' -f 2 | tr -d '()' | sed 's/-[^-]*$$//')
VERSION := $(or $(VERSION),unknown)

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-missing-field-initializers
BASE = $(WARN) -D_GNU_SOURCE -DAG_SBINDIR=\"$(SBINDIR)\" -DAG_VERSION=\"$(VERSION)\" -fPIC -fvisibility=hidden -D_FORTIFY_SOURCE=2 -fstack-protector-strong
LDHARD = -Wl,-z,relro,-z,now -Wl,--as-needed
B = build
V ?= 0
ifeq ($(V),0)
Q = @
say = @printf '  %-6s %s\n' $(1) $(2);
else
Q =
say =
endif

CORE_SRC = common/util.c common/clock.c common/names.c common/state.c common/idmap.c \
	   common/config.c common/snapshot_read.c common/snapshot_write.c common/decide.c \
	   common/guest.c common/merge.c common/snapcache.c common/helperproto.c \
	   common/sessions.c
NSS_SRC = nss/passwd.c nss/group.c nss/mapping.c common/util.c common/clock.c \
	  common/state.c common/snapshot_read.c common/snapcache.c
PAM_SRC = pam/pam_aadguest.c
CLI_SRC = $(wildcard cli/*.c) common/graph.c common/graph_users.c common/ledger.c common/credential.c common/idtoken.c

CORE_OBJ = $(CORE_SRC:%.c=$(B)/%.o)
NSS_OBJ = $(NSS_SRC:%.c=$(B)/nss-obj/%.o)
PAM_OBJ = $(PAM_SRC:%.c=$(B)/%.o)
CLI_OBJ = $(CLI_SRC:%.c=$(B)/%.o)

CURL_CFLAGS := $(shell pkg-config --cflags libcurl json-c openssl 2>/dev/null)
CURL_LIBS := $(shell pkg-config --libs libcurl json-c openssl 2>/dev/null || echo -lcurl -ljson-c -lcrypto)
# `make CURL_STATIC=1`: the tool with libcurl and every dependency Debian ships
# as a static archive linked in (it then starts 12 shared objects instead of
# 33: about 10 ms less CPU for each run, docs/fleet.md). Kerberos (GSS-API),
# SASL and p11-kit have no static archives in Debian and stay shared. Needs
# libnghttp2-dev librtmp-dev libssh2-1-dev libpsl-dev libldap-dev libzstd-dev
# libunistring-dev; and the tool no longer gets Debian's security updates of
# libcurl and OpenSSL without being rebuilt, which is why it is not the default.
ifeq ($(CURL_STATIC),1)
CLI_LIBS = -Wl,-Bstatic -lcurl -lnghttp2 -lidn2 -lrtmp -lssh2 -lpsl -lldap -llber -lssl -lcrypto \
	   -lzstd -lbrotlidec -lbrotlicommon -lz -lgnutls -lhogweed -lnettle -lgmp -ltasn1 -lidn2 \
	   -lunistring -ljson-c -Wl,-Bdynamic -l:libsasl2.so.2 -l:libgssapi_krb5.so.2 \
	   -l:libp11-kit.so.0 -lresolv -ldl -lpthread
else
CLI_LIBS = $(CURL_LIBS)
endif

TARGETS = $(B)/libnss_aadguest.so.2 $(B)/pam_aadguest.so $(B)/aadguest

all: $(TARGETS)

$(B)/%.o: %.c $(wildcard common/*.h nss/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE) $(CFLAGS) $(CURL_CFLAGS) -c -o $@ $<

# The NSS module is built from its own objects: libc only, nothing else.
$(B)/nss-obj/%.o: %.c $(wildcard common/*.h nss/*.h)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE) $(CFLAGS) -c -o $@ $<

$(B)/libcore.a: $(CORE_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

# Both hash tables (.hash too, for tools that read only SysV's; rpmlint asks for it).
$(B)/libnss_aadguest.so.2: $(NSS_OBJ) nss/nss_aadguest.map
	$(call say,LD,$@)$(CC) -shared -Wl,-soname,libnss_aadguest.so.2 -Wl,--hash-style=both -Wl,--version-script=nss/nss_aadguest.map \
		-Wl,-z,defs $(LDHARD) $(CFLAGS) -o $@ $(NSS_OBJ)

$(B)/pam_aadguest.so: $(PAM_OBJ) $(B)/libcore.a pam/pam_aadguest.map
	$(call say,LD,$@)$(CC) -shared -Wl,--version-script=pam/pam_aadguest.map -Wl,-z,defs $(LDHARD) $(CFLAGS) \
		-o $@ $(PAM_OBJ) $(B)/libcore.a -lpam

$(B)/aadguest: $(CLI_OBJ) $(B)/libcore.a
	$(call say,LD,$@)$(CC) $(LDHARD) -pie $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libcore.a $(CLI_LIBS)

# ---- tests ----
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

$(B)/tests/%: tests/unit/%.c $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -o $@ $< $(B)/libcore.a -lcmocka

# The ID token check is the tool's (json-c, OpenSSL): built with its objects.
$(B)/tests/test_idtoken: tests/unit/test_idtoken.c $(B)/common/idtoken.o $(B)/common/credential.o $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) $(CURL_CFLAGS) -o $@ $< $(B)/common/idtoken.o \
		$(B)/common/credential.o $(B)/libcore.a -lcmocka $(CURL_LIBS)

$(B)/tests/pamcheck: tests/pamcheck.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -o $@ $< -lpam -ldl

$(B)/tests/nsscheck: tests/nsscheck.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -o $@ $< -ldl -lpthread

# Reads the ledger too: built with the tool's objects.
$(B)/tests/dbdump: tests/dbdump.c $(B)/common/ledger.o $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -o $@ $< $(B)/common/ledger.o \
		$(B)/libcore.a $(CURL_LIBS)

# The tool's code as an archive (the CLI without its main, the ledger, Graph,
# credentials, ID tokens), so cmocka tests reach it: Graph's shapes, the sync's
# steps, the ledger. A test of it links libaadtool.a, libcore.a, json-c,
# OpenSSL and libcurl.
TOOL_OBJ = $(filter-out $(B)/cli/main.o,$(CLI_OBJ))
TOOL_UNIT_BIN = $(B)/tests/test_ledger $(B)/tests/test_graph_users $(B)/tests/test_child
$(B)/libaadtool.a: $(TOOL_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(TOOL_UNIT_BIN): $(B)/tests/%: tests/unit/%.c $(B)/libaadtool.a $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE -DAG_SBINDIR=\"$(SBINDIR)\" $(CFLAGS) $(CURL_CFLAGS) \
		-o $@ $< $(B)/libaadtool.a $(B)/libcore.a -lcmocka $(CURL_LIBS)

test-programs: $(UNIT_BIN) $(B)/tests/pamcheck $(B)/tests/nsscheck $(B)/tests/dbdump

deps:
	@sh tests/install-deps.sh

unit: all test-programs
	@sh tests/run-unit.sh $(UNIT_BIN)

integration: all test-programs
	@sh tests/integration.sh

check: deps
	$(MAKE) all test-programs
	@sh tests/run-all.sh

# The modules, the tool and the test programs with ASan+UBSan (any finding
# aborts), in their own build directory; then the unit, integration,
# hardening and fault suites against that build.
ASAN_B = build-asan
ASAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check-asan: deps
	$(MAKE) B=$(ASAN_B) CFLAGS="$(ASAN_CFLAGS)" all test-programs
	@AADGUEST_BUILD=$(CURDIR)/$(ASAN_B) ASAN_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
		sh tests/run-asan.sh

# ---- fuzzing (clang libFuzzer + ASan + UBSan) ----
# make fuzz FUZZ_SECONDS=N: each target N seconds from its corpus in
# tests/fuzz/corpus/<target>/ (new inputs go to build-fuzz/corpus/, crashes to
# build-fuzz/crashes/); make check replays the corpus (tests/fuzz/run.sh replay).
FUZZ_B = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_NAMES = config snapshot ledger graph dates names pam helper idtoken manifest
FUZZ_BIN = $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(B)/libcore.a $(B)/common/ledger.o \
		$(B)/common/credential.o $(B)/common/idtoken.o
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -Wno-missing-prototypes -D_GNU_SOURCE -DAG_SBINDIR=\"$(SBINDIR)\" $(CFLAGS) -fsanitize=fuzzer \
		$(CURL_CFLAGS) -o $@ $< $(B)/common/ledger.o $(B)/common/credential.o $(B)/common/idtoken.o \
		$(B)/libcore.a \
		$(CURL_LIBS) -lpam

# The manifest's parser is static in cli/fleet.c: the target compiles that file
# in, and links the rest of the tool (not its main) around it.
FUZZ_TOOL_OBJ = $(filter-out $(B)/cli/main.o $(B)/cli/fleet.o,$(CLI_OBJ))
$(B)/fuzz/fuzz_manifest: tests/fuzz/fuzz_manifest.c cli/fleet.c $(wildcard tests/fuzz/*.h cli/*.h) \
		$(FUZZ_TOOL_OBJ) $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -Wno-missing-prototypes -D_GNU_SOURCE -DAG_SBINDIR=\"$(SBINDIR)\" \
		-DAG_VERSION=\"$(VERSION)\" $(CFLAGS) \
		-fsanitize=fuzzer $(CURL_CFLAGS) -o $@ $< $(FUZZ_TOOL_OBJ) $(B)/libcore.a $(CURL_LIBS) -lpam

fuzz-targets: $(FUZZ_BIN)

fuzz: deps
	$(MAKE) B=$(FUZZ_B) CC=clang CFLAGS="$(FUZZ_CFLAGS)" fuzz-targets
	@sh tests/fuzz/run.sh fuzz $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-replay:
	$(MAKE) B=$(FUZZ_B) CC=clang CFLAGS="$(FUZZ_CFLAGS)" fuzz-targets
	@sh tests/fuzz/run.sh replay $(FUZZ_B) 0 $(FUZZ_NAMES)

demo: deps
	$(MAKE) all test-programs
	@sh tests/demo.sh

# Benchmarks: measured, never asserted by tests. Tables land in build/bench/.
bench: deps
	$(MAKE) all test-programs
	@sh tests/bench/nss-bench.sh
	@sh tests/bench/pam-bench.sh
	@sh tests/bench/signin-bench.sh
	@sh tests/bench/sync-bench.sh
	@sh tests/bench/bulk-bench.sh
	@sh tests/bench/month-run.sh
	@sh tests/bench/lockout-latency.sh
	@sh tests/bench/fleet-bench.sh

install: all install-extra
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SBINDIR)
	install -m $(MODMODE) $(B)/libnss_aadguest.so.2 $(DESTDIR)$(LIBDIR)/libnss_aadguest.so.2
	install -m $(MODMODE) $(B)/pam_aadguest.so $(DESTDIR)$(PAMDIR)/pam_aadguest.so
	install -m 0755 $(B)/aadguest $(DESTDIR)$(SBINDIR)/aadguest
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/aadguest
	install -d -m 0755 $(DESTDIR)/var/lib/aadguest

clean:
	rm -rf $(B)

.PHONY: all check check-asan fuzz fuzz-targets fuzz-replay demo deps unit integration install clean test-programs bench

# deb, rpm, install-extra (man pages, units, pam-auth-update profile, example config)
include packaging/packaging.mk

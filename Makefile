# aadguest: one entry point. make | make check | make demo | make bench | make install
PREFIX ?= /usr
LIBDIR ?= $(PREFIX)/lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo .)
SBINDIR ?= $(PREFIX)/sbin
PAMDIR ?= $(LIBDIR)/security
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-missing-field-initializers
BASE = $(WARN) -D_GNU_SOURCE -DAG_SBINDIR=\"$(SBINDIR)\" -fPIC -fvisibility=hidden -D_FORTIFY_SOURCE=2 -fstack-protector-strong
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
	   common/merge.c common/snapcache.c common/helperproto.c
NSS_SRC = nss/passwd.c nss/group.c nss/snapcache.c common/util.c common/clock.c \
	  common/state.c common/snapshot_read.c common/snapcache.c
PAM_SRC = pam/pam_aadguest.c
CLI_SRC = $(wildcard cli/*.c) common/graph.c common/guestdb.c common/credential.c common/idtoken.c

CORE_OBJ = $(CORE_SRC:%.c=$(B)/%.o)
NSS_OBJ = $(NSS_SRC:%.c=$(B)/nss-obj/%.o)
PAM_OBJ = $(PAM_SRC:%.c=$(B)/%.o)
CLI_OBJ = $(CLI_SRC:%.c=$(B)/%.o)

CURL_CFLAGS := $(shell pkg-config --cflags libcurl json-c openssl 2>/dev/null)
CURL_LIBS := $(shell pkg-config --libs libcurl json-c openssl 2>/dev/null || echo -lcurl -ljson-c -lcrypto)

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

$(B)/libnss_aadguest.so.2: $(NSS_OBJ) nss/nss_aadguest.map
	$(call say,LD,$@)$(CC) -shared -Wl,-soname,libnss_aadguest.so.2 -Wl,--version-script=nss/nss_aadguest.map \
		-Wl,-z,defs $(LDHARD) $(CFLAGS) -o $@ $(NSS_OBJ)

$(B)/pam_aadguest.so: $(PAM_OBJ) $(B)/libcore.a pam/pam_aadguest.map
	$(call say,LD,$@)$(CC) -shared -Wl,--version-script=pam/pam_aadguest.map -Wl,-z,defs $(LDHARD) $(CFLAGS) \
		-o $@ $(PAM_OBJ) $(B)/libcore.a -lpam

$(B)/aadguest: $(CLI_OBJ) $(B)/libcore.a
	$(call say,LD,$@)$(CC) $(LDHARD) -pie $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libcore.a $(CURL_LIBS)

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

# Reads the private state too: built with the tool's objects.
$(B)/tests/dbdump: tests/dbdump.c $(B)/common/guestdb.o $(B)/libcore.a
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -o $@ $< $(B)/common/guestdb.o \
		$(B)/libcore.a $(CURL_LIBS)

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
	@sh tests/bench/month-run.sh
	@sh tests/bench/lockout-latency.sh

install: all install-extra
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SBINDIR)
	install -m 0644 $(B)/libnss_aadguest.so.2 $(DESTDIR)$(LIBDIR)/libnss_aadguest.so.2
	install -m 0644 $(B)/pam_aadguest.so $(DESTDIR)$(PAMDIR)/pam_aadguest.so
	install -m 0755 $(B)/aadguest $(DESTDIR)$(SBINDIR)/aadguest
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/aadguest
	install -d -m 0755 $(DESTDIR)/var/lib/aadguest

clean:
	rm -rf $(B)

.PHONY: all check demo deps unit integration install clean test-programs bench

# deb, rpm, install-extra (man pages, units, pam-auth-update profile, example config)
include packaging/packaging.mk

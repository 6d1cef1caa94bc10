# SPDX-License-Identifier: GPL-2.0-or-later
# One plain Makefile for keyd, keydctl, wipe and their tests.
VERSION   := 0.1.0
PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
# systemd reads sysusers.d and tmpfiles.d from /usr/lib, /etc and /run only (not /usr/local).
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# Where libcryptsetup looks for token plugins (`cryptsetup --help` prints it).
TOKENDIR  ?= $(shell pkg-config --variable=libdir libcryptsetup)/cryptsetup
DESTDIR   ?=

CC        ?= cc
PKGS      := libcryptsetup openssl libcurl blkid jansson libevent libevent_pthreads libevent_openssl
# p11-kit-1 for its pkcs11.h only: PKCS#11 modules are dlopen'd, libp11-kit is not linked.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) p11-kit-1)
# libcurl is dlopen'd by common/http.c on first HTTPS use (keydctl status never loads it): its
# headers are used, it is not linked (debian/control depends on libcurl4 by name).
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)))

WARN      := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla \
             -Wimplicit-fallthrough -Wno-format-nonliteral
# -fPIC: the same objects go into the PIE programs and the token plugin.
HARDEN    := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIC
# CFLAGS/LDFLAGS stay the user's (make CFLAGS=...); the project's own flags are added below.
CFLAGS    ?= -O2 -g
KCFLAGS   := -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) -pthread \
             -DKEYD_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
KLDFLAGS  := -pie -Wl,-z,relro,-z,now -pthread
ifeq ($(CI),true)
KCFLAGS   += -Werror
endif

BUILD     ?= build
OBJ       := $(BUILD)/obj

# The layers (docs/architecture.md). Each folder sees only its own headers and those of the
# layers below it, so an include that runs the wrong way does not compile:
#   keyd/daemon, keyd/ctl, keyd/plugin -> keyd (config) -> keyd/volume -> keyd/kms -> common
#   wipe -> common
# Providers of more than one file have a room of their own under keyd/kms/.
KMS_ROOMS  := cloud kmip pkcs11 vault
INC_common := -Icommon
INC_kms    := $(INC_common) -Ikeyd/kms
INC_volume := $(INC_kms) -Ikeyd/volume
INC_config := $(INC_kms) -Ikeyd
INC_daemon := $(INC_volume) -Ikeyd -Ikeyd/daemon
INC_ctl    := $(INC_volume) -Ikeyd -Ikeyd/ctl
INC_plugin := $(INC_volume) -Ikeyd -Ikeyd/plugin
INC_wipe   := $(INC_common) -Iwipe
# The tests reach into the providers' own modules (TTLV, TC3, PKCS#11 WDEKs) too.
INC_tests  := $(INC_daemon) -Iwipe $(addprefix -Ikeyd/kms/,$(KMS_ROOMS))

srcs = $(patsubst %.c,%.o,$(wildcard $(1)/*.c))
COMMON    := $(call srcs,common)
KMS       := $(call srcs,keyd/kms) $(foreach r,$(KMS_ROOMS),$(call srcs,keyd/kms/$(r)))
VOLUME    := $(call srcs,keyd/volume)
CONFIG    := $(call srcs,keyd)
DAEMON    := $(filter-out keyd/daemon/main.o,$(call srcs,keyd/daemon))
CTL       := $(call srcs,keyd/ctl)
WIPE      := $(filter-out wipe/main.o,$(call srcs,wipe))
BINS      := $(BUILD)/keyd $(BUILD)/keydctl $(BUILD)/wipe
TOKEN_SO  := $(BUILD)/libcryptsetup-token-keyd.so
OBJS      := $(addprefix $(OBJ)/,$(COMMON) $(KMS) $(VOLUME) $(CONFIG) $(DAEMON) \
             keyd/daemon/main.o $(CTL) keyd/plugin/token_plugin.o $(WIPE) wipe/main.o)
# Link order: a library before the ones it uses.
LIBS      := $(BUILD)/libdaemon.a $(BUILD)/libkeyd.a $(BUILD)/libwipe.a $(BUILD)/libcommon.a
# Units are generated from units/*.in with the install paths (SBINDIR) filled in.
UNIT_INS  := $(wildcard units/*.in)
UNITS     := $(patsubst units/%.in,$(BUILD)/units/%,$(UNIT_INS))
UNIT_SED  := sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

.PHONY: all deps check check-valgrind check-asan fuzz fuzz-build fuzz-targets install clean format format-check deb
all: $(BINS) $(TOKEN_SO) $(UNITS)

# Objects are rebuilt when the compiler or its flags change: an object built with other flags
# (say -fPIE before the plugin needed -fPIC) is a wrong build, not a cached one.
FLAGS_STAMP := $(OBJ)/.flags
FLAGS_NOW := $(CC) $(KCFLAGS) $(CFLAGS)
ifneq ($(FLAGS_NOW),$(file <$(FLAGS_STAMP)))
$(shell mkdir -p $(OBJ))
$(file >$(FLAGS_STAMP),$(FLAGS_NOW))
endif

$(OBJ)/common/%.o: INC := $(INC_common)
$(OBJ)/keyd/kms/%.o: INC := $(INC_kms)
$(OBJ)/keyd/volume/%.o: INC := $(INC_volume)
$(OBJ)/keyd/%.o: INC := $(INC_config)
$(OBJ)/keyd/daemon/%.o: INC := $(INC_daemon)
$(OBJ)/keyd/ctl/%.o: INC := $(INC_ctl)
$(OBJ)/keyd/plugin/%.o: INC := $(INC_plugin)
$(OBJ)/wipe/%.o: INC := $(INC_wipe)

$(OBJ)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(INC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libcommon.a: $(addprefix $(OBJ)/,$(COMMON))
	rm -f $@ && $(AR) rcs $@ $^

# config, the volume operations and the KMS providers: what keyd, keydctl and the plugin share.
$(BUILD)/libkeyd.a: $(addprefix $(OBJ)/,$(CONFIG) $(VOLUME) $(KMS))
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libdaemon.a: $(addprefix $(OBJ)/,$(DAEMON))
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libwipe.a: $(addprefix $(OBJ)/,$(WIPE))
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/keyd: $(OBJ)/keyd/daemon/main.o $(BUILD)/libdaemon.a $(BUILD)/libkeyd.a $(BUILD)/libcommon.a
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/keydctl: $(addprefix $(OBJ)/,$(CTL)) $(BUILD)/libkeyd.a $(BUILD)/libcommon.a
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/wipe: $(OBJ)/wipe/main.o $(BUILD)/libwipe.a $(BUILD)/libcommon.a
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The LUKS2 token plugin: our code linked in and kept local, only the ABI exported.
PLUGIN_LIBS := $(shell pkg-config --libs libcryptsetup openssl jansson blkid)
PLUGIN_SYM  := keyd/plugin/token-plugin.sym
$(TOKEN_SO): $(OBJ)/keyd/plugin/token_plugin.o $(BUILD)/libkeyd.a $(BUILD)/libcommon.a $(PLUGIN_SYM)
	$(CC) -shared -Wl,--version-script=$(PLUGIN_SYM) -Wl,-z,relro,-z,now,-z,defs \
		-Wl,--as-needed -pthread $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(PLUGIN_LIBS)

# Rebuilt when the paths change: a unit naming another prefix than the binaries is broken.
UNITS_STAMP := $(BUILD)/units/.paths
ifneq ($(UNIT_SED),$(file <$(UNITS_STAMP)))
$(shell mkdir -p $(BUILD)/units)
$(file >$(UNITS_STAMP),$(UNIT_SED))
endif
$(BUILD)/units/%: units/%.in $(UNITS_STAMP)
	@mkdir -p $(dir $@)
	$(UNIT_SED) $< >$@.tmp && mv $@.tmp $@

# Unit tests (cmocka) link the module objects, never include .c files.
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
$(BUILD)/tests/%: tests/unit/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(INC_tests) $(CFLAGS) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) \
		$(shell pkg-config --libs cmocka)

# The test command installs what the tests need (a no-op when everything is there).
deps:
	scripts/install-deps

check: deps
	$(MAKE) format-check
	$(MAKE) all $(UNIT_BINS)
	tests/run-tests

# The integration tier with keyd and keydctl under valgrind's memcheck (tests/lib.sh): a test
# fails on any error or definite leak. Memcheck runs them 20-50x slower (docs/testing.md).
check-valgrind: deps
	$(MAKE) all
	VALGRIND=1 TEST_TIMEOUT=3000 tests/run-tests

check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" check

# libFuzzer, one target per parser of outside input: each row of the table in
# tests/fuzz/fuzz-parsers.c is built as build-fuzz/fuzz-NAME and run over tests/fuzz/corpus/NAME
# for FUZZ_SECONDS each (0: replays the corpus only), or for FUZZ_RUNS executions when that is
# given (the long run: make fuzz FUZZ_RUNS=10000000). One line per target says how many runs it
# did; its log is build-fuzz/logs/NAME.log, new inputs go to build-fuzz/corpus/NAME, a crash to
# build-fuzz/crashes/NAME/. FUZZ_TARGETS="token kmip" runs only those.
FUZZ_SECONDS ?= 10
FUZZ_RUNS ?=
FUZZ_TARGETS ?= $(shell sed -n 's/^\t{\.name = "\([a-z0-9-]*\)".*/\1/p' tests/fuzz/fuzz-parsers.c)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBS := $(subst $(BUILD)/,build-fuzz/,$(LIBS))
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS) \
	     -runs=$(if $(filter 0,$(FUZZ_SECONDS)),0,-1))
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus/$$t build-fuzz/crashes/$$t build-fuzz/logs; \
		build-fuzz/fuzz-$$t $(FUZZ_LIMIT) -print_final_stats=1 \
			-artifact_prefix=build-fuzz/crashes/$$t/ build-fuzz/corpus/$$t \
			tests/fuzz/corpus/$$t >build-fuzz/logs/$$t.log 2>&1 || \
		{ tail -n 40 build-fuzz/logs/$$t.log; \
		  echo "fuzz-$$t: FAILED, see build-fuzz/crashes/$$t/ and build-fuzz/logs/$$t.log"; \
		  exit 1; }; \
		echo "fuzz-$$t: $$(grep -m1 '^Done' build-fuzz/logs/$$t.log)," \
		     "$$(sed -n 's/^stat::average_exec_per_sec: *//p' build-fuzz/logs/$$t.log) exec/s"; \
	done

fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		LDFLAGS="$(FUZZ_SAN)" $(FUZZ_LIBS)
	$(MAKE) $(addprefix build-fuzz/fuzz-,$(FUZZ_TARGETS))

# The names, for tests/integration/t-fuzz.sh.
fuzz-targets:
	@echo $(FUZZ_TARGETS)

build-fuzz/fuzz-%: tests/fuzz/fuzz-parsers.c $(FUZZ_LIBS)
	clang $(KCFLAGS) $(INC_tests) -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) -DFUZZ_TARGET='"$*"' \
		-o $@ $< $(FUZZ_LIBS) $(PKG_LIBS)

# The example configuration is installed only where there is none (it has no volumes: keyd
# starts with it and `keydctl check` says what to fill in).
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(TOKENDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/keyd
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(TOKEN_SO) $(DESTDIR)$(TOKENDIR)/
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/
	install -m 0644 docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 dist/sysusers/keyd.conf $(DESTDIR)$(SYSUSERSDIR)/keyd.conf
	install -m 0644 dist/tmpfiles/keyd.conf $(DESTDIR)$(TMPFILESDIR)/keyd.conf
	install -m 0644 dist/bash-completion/keydctl dist/bash-completion/wipe \
		$(DESTDIR)$(BASHCOMPDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/keyd/keyd.json || \
		install -m 0644 dist/keyd.json $(DESTDIR)$(SYSCONFDIR)/keyd/keyd.json

# Debian packages (debian/) into $(BUILD)/deb/, then lintian over them.
deb:
	scripts/build-deb $(BUILD)/deb

FORMAT_SRCS := $(wildcard common/*.[ch] keyd/*.[ch] keyd/*/*.[ch] keyd/*/*/*.[ch] wipe/*.[ch] tests/unit/*.c \
               tests/fuzz/*.c)
format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d)

# SPDX-License-Identifier: GPL-2.0-or-later
# One plain Makefile for keyd, keydctl, wipe and their tests.
VERSION   := 0.1.0
PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= /lib/systemd/system
# Where libcryptsetup looks for token plugins (`cryptsetup --help` prints it).
TOKENDIR  ?= $(shell pkg-config --variable=libdir libcryptsetup)/cryptsetup
DESTDIR   ?=

CC        ?= cc
PKGS      := libcryptsetup openssl libcurl blkid jansson libevent libevent_pthreads libevent_openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN      := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla \
             -Wimplicit-fallthrough -Wno-format-nonliteral
# -fPIC: the same objects go into the PIE programs and the token plugin.
HARDEN    := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIC
# CFLAGS/LDFLAGS stay the user's (make CFLAGS=...); the project's own flags are added below.
CFLAGS    ?= -O2 -g
KCFLAGS   := -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) -pthread -Icommon -Ikeyd -Iwipe \
             -DKEYD_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
KLDFLAGS  := -pie -Wl,-z,relro,-z,now -pthread
ifeq ($(CI),true)
KCFLAGS   += -Werror
endif

BUILD     ?= build
OBJ       := $(BUILD)/obj
# Programs' main files and the daemon's own modules stay out of the libraries that tests link.
COMMON    := $(patsubst %.c,%.o,$(wildcard common/*.c))
KEYD_MAIN := keyd/main.o keyd/daemon.o keyd/api.o keyd/notify.o keyd/lifecycle.o
CTL_MAIN  := keyd/keydctl.o
PLUGIN    := keyd/token_plugin.o
KEYD_LIB  := $(filter-out $(KEYD_MAIN) $(CTL_MAIN) $(PLUGIN), \
             $(patsubst %.c,%.o,$(wildcard keyd/*.c)))
WIPE_MAIN := wipe/main.o
WIPE_LIB  := $(filter-out $(WIPE_MAIN),$(patsubst %.c,%.o,$(wildcard wipe/*.c)))
BINS      := $(BUILD)/keyd $(BUILD)/keydctl $(if $(wildcard wipe/main.c),$(BUILD)/wipe)
TOKEN_SO  := $(BUILD)/libcryptsetup-token-keyd.so
OBJS      := $(addprefix $(OBJ)/,$(COMMON) $(KEYD_LIB) $(KEYD_MAIN) $(CTL_MAIN) $(PLUGIN) \
             $(WIPE_LIB) $(WIPE_MAIN))
LIBS      := $(BUILD)/libwipe.a $(BUILD)/libkeyd.a

.PHONY: all deps check check-asan fuzz install clean format format-check
all: $(BINS) $(TOKEN_SO)

# Objects are rebuilt when the compiler or its flags change: an object built with other flags
# (say -fPIE before the plugin needed -fPIC) is a wrong build, not a cached one.
FLAGS_STAMP := $(OBJ)/.flags
FLAGS_NOW := $(CC) $(KCFLAGS) $(CFLAGS)
ifneq ($(FLAGS_NOW),$(file <$(FLAGS_STAMP)))
$(shell mkdir -p $(OBJ))
$(file >$(FLAGS_STAMP),$(FLAGS_NOW))
endif

$(OBJ)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libkeyd.a: $(addprefix $(OBJ)/,$(COMMON) $(KEYD_LIB))
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libwipe.a: $(addprefix $(OBJ)/,$(WIPE_LIB))
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/keyd: $(addprefix $(OBJ)/,$(KEYD_MAIN)) $(BUILD)/libkeyd.a
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/keydctl: $(addprefix $(OBJ)/,$(CTL_MAIN)) $(BUILD)/libkeyd.a
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/wipe: $(addprefix $(OBJ)/,$(WIPE_MAIN)) $(LIBS)
	$(CC) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The LUKS2 token plugin: our code linked in and kept local, only the ABI exported.
PLUGIN_LIBS := $(shell pkg-config --libs libcryptsetup openssl libcurl jansson blkid)
$(TOKEN_SO): $(OBJ)/$(PLUGIN) $(BUILD)/libkeyd.a keyd/token-plugin.sym
	$(CC) -shared -Wl,--version-script=keyd/token-plugin.sym -Wl,-z,relro,-z,now,-z,defs \
		-Wl,--as-needed -pthread $(LDFLAGS) -o $@ $(OBJ)/$(PLUGIN) $(BUILD)/libkeyd.a \
		$(PLUGIN_LIBS)

# Unit tests (cmocka) link the module objects, never include .c files.
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
$(BUILD)/tests/%: tests/unit/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(CFLAGS) $(KLDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) \
		$(shell pkg-config --libs cmocka)

# The test command installs what the tests need (a no-op when everything is there).
deps:
	scripts/install-deps

check: deps
	$(MAKE) format-check
	$(MAKE) all $(UNIT_BINS)
	tests/run-tests

check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" check

# libFuzzer over every parser of outside input (tests/fuzz); FUZZ_SECONDS=0 only replays the
# seed corpus. New crashes land in build-fuzz/ as crash-* files.
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		LDFLAGS="$(FUZZ_SAN)" build-fuzz/libwipe.a build-fuzz/libkeyd.a
	clang $(KCFLAGS) -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) -o build-fuzz/fuzz-parsers \
		tests/fuzz/fuzz-parsers.c build-fuzz/libwipe.a build-fuzz/libkeyd.a $(PKG_LIBS)
	mkdir -p build-fuzz/corpus
	cd build-fuzz && ./fuzz-parsers -max_total_time=$(FUZZ_SECONDS) -runs=$(if $(filter 0,$(FUZZ_SECONDS)),0,-1) \
		corpus ../tests/fuzz/corpus

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(TOKENDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(TOKEN_SO) $(DESTDIR)$(TOKENDIR)/
	install -m 0644 units/keyd.service units/wipe@.service $(DESTDIR)$(UNITDIR)/
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/

FORMAT_SRCS := $(wildcard common/*.[ch] keyd/*.[ch] wipe/*.[ch] tests/unit/*.c tests/fuzz/*.c)
format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d)

# pgdispatch: build, install, test.
#
#   make                 build build/pgdispatch
#   make demo            install missing packages, build, run the daemon on
#                        examples/demo/ against a scratch PostgreSQL
#   make config-push     the examples/config-push/ run (a source: the
#                        application's own table) on a scratch PostgreSQL
#   make order-fanout    the examples/order-fanout/ run (HTTP handlers; a
#                        circuit breaker opens while a service is down and
#                        closes when it is back) on a scratch PostgreSQL
#   make guaranteed-delivery   the examples/guaranteed-delivery/ run (a
#                        consumer that fails at random applies every event
#                        once) on a scratch PostgreSQL; ORDERED=1 (the
#                        default here) also keeps each key's order,
#                        ORDERED=0 runs it without order_key
#   make bench           measure against PostgreSQL's own ceiling (QUICK=1:
#                        a short run); figures in build/bench/
#   make soak            three daemons killed over and over, PostgreSQL
#                        restarted, running rows locked by a hostile
#                        session: asserts nothing lost, stuck or run too
#                        often (under 5 minutes); figures in build/soak/
#   make check           install missing packages, build, run every test
#                        against a scratch PostgreSQL (or $PGHOST when set),
#                        some through a PgBouncer the tests start
#   make check-unit      the unit tier only (no database)
#   make check SANITIZE=1   the same, built with AddressSanitizer, LeakSanitizer
#                        and UndefinedBehaviorSanitizer in build/san; any
#                        report, from the tests or a daemon they start, fails
#   make fuzz            run the libFuzzer targets in tests/fuzz/ for
#                        FUZZ_SECONDS each (default 60); a crash fails
#   make scratch-db      a shell with a throwaway PostgreSQL, removed on exit
#   make install         PREFIX=/usr/local DESTDIR=
#   make clean           remove build/

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build
SANITIZE ?=

# libcurl: HTTP handlers (dispatcher/handler_http.c), on its multi interface.
PKGS      := libpq yaml-0.1 libcurl
PKGS_TEST := $(PKGS) check

CC ?= cc
WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT      ?= -O2 -g
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) \
             -I$(BUILD) -Idispatcher $(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# SANITIZE=1: its own build directory, so sanitized and plain objects never
# mix. Reports go to files (tests/sanitize_run.sh) rather than stderr,
# because the daemon's stderr is what tests read. Built with clang: its one
# runtime writes ASan, LSan and UBSan reports alike to log_path, where gcc's
# separate libubsan prints UBSan's to stderr whatever UBSAN_OPTIONS says.
# _FORTIFY_SOURCE is left out: its checked copies (__memcpy_chk and
# friends) would run instead of the calls ASan intercepts. -O1 keeps stack
# traces readable.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
BUILD    := build/san
CC       := clang-14
HARDEN   := -fstack-protector-strong -fPIE
OPT      := -O1 -g
CFLAGS_ALL += $(SAN_FLAGS)
LDFLAGS_ALL += $(SAN_FLAGS)
SAN_RUN  := tests/sanitize_run.sh $(abspath $(BUILD)/sanitizer-reports)
endif

# pkg-config is asked lazily (=, not :=) so that `make deps` can install it
# before the first compile needs it.
PKG_CFLAGS      = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS        = $(shell pkg-config --libs $(PKGS))
PKG_TEST_CFLAGS = $(shell pkg-config --cflags $(PKGS_TEST))
PKG_TEST_LIBS   = $(shell pkg-config --libs $(PKGS_TEST))

# Every module except main.c is linked into both the daemon and the tests.
LIB_SRC  := $(filter-out dispatcher/main.c,$(wildcard dispatcher/*.c))
LIB_OBJ  := $(patsubst dispatcher/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/embed_files.o
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(patsubst tests/%.c,$(BUILD)/test-obj/%.o,$(TEST_SRC))

# SQL and migrations are compiled into the binary: an installed pgdispatch
# needs no source tree.
EMBED_SRC := $(sort $(wildcard migrations/*.sql)) $(sort $(wildcard sql/*.sql))

.PHONY: all deps check check-unit fuzz fuzz-deps scratch-db demo config-push order-fanout guaranteed-delivery \
	bench soak install uninstall clean

all: $(BUILD)/pgdispatch

deps:
	@tests/deps.sh $(if $(filter 1,$(SANITIZE)),clang)

$(BUILD)/pgdispatch: $(BUILD)/obj/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS)

$(BUILD)/obj/%.o: dispatcher/%.c dispatcher/*.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/embed_files.c: dispatcher/embed_gen.sh $(EMBED_SRC) | $(BUILD)/obj
	sh dispatcher/embed_gen.sh $(EMBED_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embed_files.o: $(BUILD)/embed_files.c dispatcher/embed.h
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/test-obj/%.o: tests/%.c tests/*.h dispatcher/*.h | $(BUILD)/test-obj
	$(CC) $(CFLAGS_ALL) -Itests $(PKG_TEST_CFLAGS) -c -o $@ $<

$(BUILD)/check_pgdispatch: $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS_ALL) $(PKG_TEST_LIBS)

$(BUILD)/obj $(BUILD)/test-obj:
	mkdir -p $@

# The test binary finds the daemon and the source tree through the
# environment, so it can run from any directory.
TEST_ENV = PGDISPATCH_BIN=$(abspath $(BUILD)/pgdispatch) PGDISPATCH_SRC=$(CURDIR)

check: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/check_pgdispatch $(BUILD)/config-push-sink \
		$(BUILD)/http-stub
	$(TEST_ENV) $(SAN_RUN) tests/pg_scratch.sh $(BUILD)/check_pgdispatch

check-unit: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/check_pgdispatch
	env -u PGHOST $(TEST_ENV) PGDISPATCH_TIER=unit $(SAN_RUN) $(BUILD)/check_pgdispatch

scratch-db: deps all
	PATH=$(abspath $(BUILD)):$$PATH tests/pg_scratch.sh

demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch
	tests/pg_scratch.sh examples/demo/run.sh

# The config-push example; tests/check_examples.c runs it in `make check`
# too, with the listener next to the binary under test.
config-push: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/config-push-sink
	PGDISPATCH_BIN=$(BUILD)/pgdispatch tests/pg_scratch.sh examples/config-push/run.sh

# The HTTP examples, against build/http-stub; tests/check_examples.c runs
# them in `make check` too. guaranteed-delivery runs with per-key order
# unless ORDERED=0 is given.
order-fanout: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/http-stub
	PGDISPATCH_BIN=$(BUILD)/pgdispatch tests/pg_scratch.sh examples/order-fanout/run.sh

guaranteed-delivery: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/http-stub
	ORDERED=$(or $(ORDERED),1) PGDISPATCH_BIN=$(BUILD)/pgdispatch \
		tests/pg_scratch.sh examples/guaranteed-delivery/run.sh

# The example's TCP listener: plain, never sanitized (it is not under test).
$(BUILD)/config-push-sink: examples/config-push/sink.c | $(BUILD)/obj
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -o $@ $<

# The HTTP service of the HTTP handlers' tests (tests/check_http.c finds it
# next to the daemon), examples and bench. In tests/stub/ because
# tests/*.c is linked into the test binary. Built like the daemon, and so
# sanitized under SANITIZE=1: its reports fail the run like the daemon's.
$(BUILD)/http-stub: tests/stub/http_stub.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

bench: deps
	@command -v gnuplot >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null || true
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/http-stub $(BUILD)/http-floor
	PGDISPATCH_SCRATCH_DURABLE=1 \
	PGDISPATCH_SCRATCH_CONF="$$(printf 'track_commit_timestamp = on\nautovacuum_naptime = 1s\nmax_wal_size = 4GB')" \
		QUICK=$(QUICK) tests/pg_scratch.sh tests/bench/run.sh

# The bench's HTTP client (its `http` section): the stub's ceiling, and
# libcurl's with no database. Plain, never sanitized: it measures.
$(BUILD)/http-floor: tests/bench/http_floor.c | $(BUILD)/obj
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) $(shell pkg-config --cflags libcurl) -o $@ $< \
		$(shell pkg-config --libs libcurl)

soak: deps
	@$(MAKE) --no-print-directory $(BUILD)/pgdispatch $(BUILD)/soak-record
	PGDISPATCH_SCRATCH_DURABLE=1 PGDISPATCH_SCRATCH_CONF="autovacuum_naptime = 1s" \
		tests/pg_scratch.sh tests/soak/run.sh

# The soak's handler, static where the C library allows: it starts faster.
$(BUILD)/soak-record: tests/soak/record.c | $(BUILD)/obj
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -static -o $@ $< || \
		$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -o $@ $<

# Fuzzing: libFuzzer targets in tests/fuzz/, built with clang and ASan +
# UBSan into build/fuzz (apart from every other build). Each runs for
# FUZZ_SECONDS (FUZZ_TARGETS=config runs one); the first crash fails
# `make fuzz`, leaving its input in build/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config json http_template
FUZZ_CC      ?= clang-14
FUZZ_BUILD   := build/fuzz
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -Idispatcher -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all
# What each target links besides its harness: the module it fuzzes and
# what that module calls.
FUZZ_config_OBJ := config.o config_parser.o config_http.o config_schedules.o config_sources.o \
                   cron.o http_template.o json.o log.o secrets.o
FUZZ_json_OBJ   := json.o log.o
FUZZ_http_template_OBJ := http_template.o json.o
FUZZ_LIBS = $(shell pkg-config --libs yaml-0.1)
FUZZ_config_SEEDS := tests/fuzz/seeds/config $(wildcard examples/*/*.yaml)
FUZZ_json_SEEDS   := tests/fuzz/seeds/json
FUZZ_http_template_SEEDS := tests/fuzz/seeds/http_template

fuzz-deps:
	@tests/deps.sh clang

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))
	$(foreach t,$(FUZZ_TARGETS),tests/fuzz/run.sh $(FUZZ_BUILD)/fuzz_$(t) $(t) $(FUZZ_SECONDS) $(FUZZ_$(t)_SEEDS) &&) true

$(FUZZ_BUILD)/obj/%.o: dispatcher/%.c dispatcher/*.h | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c dispatcher/*.h | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz_%.o $$(addprefix $(FUZZ_BUILD)/obj/,$$(FUZZ_$$*_OBJ))
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_BUILD)/obj:
	mkdir -p $@

install: $(BUILD)/pgdispatch
	install -D -m 0755 $(BUILD)/pgdispatch $(DESTDIR)$(PREFIX)/bin/pgdispatch

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/pgdispatch

clean:
	rm -rf $(BUILD)

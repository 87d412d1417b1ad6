# PGXS build of the calo_recon extension.
#   make / make install / make installcheck   (the usual PGXS targets)
#   make unit    C unit tests of the plain cores under ASan + UBSan
#   make fuzz    libFuzzer targets (FUZZ_SECONDS=30 make fuzz-run for a smoke run)
#   make tools   client tools (tools/calo_recon_load, tools/calo_recon_gen)

EXTENSION  = calo_recon
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" calo_recon.control)

MODULE_big = calo_recon
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from sql/install/*.sql
# in file-name order; older versions and upgrade scripts are committed as is.
# Version 1.0 is the parts before the ops area (00..69) and the 1.0 -> 1.1
# update script is the rest (7x); both are assembled from the same part files
# as the 1.1 install script, so a fresh 1.1 and an updated 1.0 cannot drift
# (test/integration/upgrade.sh compares the catalogs). Once 1.0 is released,
# commit its script and drop its rule.
PARTS            = $(sort $(wildcard sql/install/*.sql))
PARTS_1_0        = $(sort $(wildcard sql/install/[0-6]*.sql))
PARTS_1_0_TO_1_1 = $(filter-out $(PARTS_1_0),$(PARTS))
DATA_built = sql/calo_recon--$(EXTVERSION).sql sql/calo_recon--1.0.sql sql/calo_recon--1.0--1.1.sql
DATA       = $(filter-out $(DATA_built),$(wildcard sql/calo_recon--*.sql))

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=.
# Deterministic interleavings of concurrent sessions (isolationtester specs in
# test/specs/, expected output beside the pg_regress ones in expected/).
# pg_isolation_regress (PostgreSQL 15) reads both the spec and its expected
# output under one --inputdir (specs/, expected/), so installcheck first links
# both folders into output_iso/input.
ISOLATION       = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_INPUT = output_iso/input
ISOLATION_OPTS  = --inputdir=$(ISOLATION_INPUT) --outputdir=.

SHLIB_LINK += -lz -lxlsxwriter
# PostgreSQL's function-manager macros leave fcinfo unused and its headers
# compare signed with unsigned, so those two -Wextra checks stay off for glue.
PG_CFLAGS  += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -Isrc
EXTRA_CLEAN = results output_iso regression.diffs regression.out test/unit/build test/fuzz/build \
              tools/calo_recon_load tools/calo_recon_gen

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/calo_recon--$(EXTVERSION).sql: $(PARTS) calo_recon.control
	cat $(PARTS) > $@

sql/calo_recon--1.0.sql: $(PARTS_1_0)
	cat $(PARTS_1_0) > $@

sql/calo_recon--1.0--1.1.sql: $(PARTS_1_0_TO_1_1)
	{ printf '%s\n' '\echo Use "ALTER EXTENSION calo_recon UPDATE TO '"'1.1'"'" to load this file. \quit'; \
	  cat $(PARTS_1_0_TO_1_1); } > $@

installcheck: isolation-input
isolation-input:
	mkdir -p $(ISOLATION_INPUT)
	ln -sfn ../../test/specs $(ISOLATION_INPUT)/specs
	ln -sfn ../../expected $(ISOLATION_INPUT)/expected

.PHONY: unit fuzz fuzz-run tools isolation-input
tools:
	$(MAKE) -C tools PG_CONFIG=$(PG_CONFIG)
unit:
	$(MAKE) -C test/unit
fuzz:
	$(MAKE) -C test/fuzz
fuzz-run:
	$(MAKE) -C test/fuzz run

# PGXS build of the calo_recon extension.
#   make / make install / make installcheck   (the usual PGXS targets)
#   make unit    C unit tests of the plain cores under ASan + UBSan
#   make fuzz    libFuzzer targets (FUZZ_SECONDS=30 make fuzz-run for a smoke run)
#   make tools   client tools (tools/calo_recon_load, tools/calo_recon_gen)

EXTENSION  = calo_recon
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" calo_recon.control)

include mk/build_flags.mk

MODULE_big = calo_recon
# The Excel export needs libxlsxwriter; without it (not found, or XLSXWRITER=no)
# src/glue/workbook_unavailable_glue.c stands in and export_workbook() says why.
XLSXWRITER ?= $(shell echo '\#include <xlsxwriter.h>' | $${CC:-cc} -E -x c - >/dev/null 2>&1 && echo yes || echo no)
WORKBOOK_LEFT_OUT = $(if $(filter yes,$(XLSXWRITER)),src/glue/workbook_unavailable_glue.c,src/glue/workbook_glue.c)
# src/core: the plain C cores; src/glue: the PostgreSQL glue (one file per
# SQL-facing job), which includes the cores' headers.
CORE_SRCS  = $(sort $(wildcard src/core/*.c))
GLUE_SRCS  = $(sort $(filter-out $(WORKBOOK_LEFT_OUT),$(wildcard src/glue/*.c)))
OBJS       = $(patsubst %.c,%.o,$(CORE_SRCS) $(GLUE_SRCS))

# Released versions are frozen: sql/calo_recon--1.0.sql and every update
# script sql/calo_recon--A--B.sql are committed files that are never edited
# once released. The install script of the version under development is
# assembled from sql/install/*.sql in file-name order; those parts always
# describe the newest schema in full, and each change to them is also written
# as a migration into the next update script (sql/calo_recon--1.1--1.2.sql).
# test/integration/upgrade.sh installs 1.0, updates through the chain and
# compares the catalog with a fresh install of the newest version, so a
# migration that is missing or differs from the parts fails the suite.
PARTS      = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/calo_recon--$(EXTVERSION).sql
DATA       = $(filter-out $(DATA_built),$(wildcard sql/calo_recon--*.sql))

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=.
# Deterministic interleavings of concurrent sessions (isolationtester specs in
# test/specs/, expected output beside the pg_regress ones in test/expected/):
# pg_isolation_regress (PostgreSQL 15) reads both under one --inputdir.
ISOLATION       = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS  = --inputdir=test --outputdir=.

SHLIB_LINK += -lz $(if $(filter yes,$(XLSXWRITER)),-lxlsxwriter)
PG_CFLAGS  += $(CALO_GLUE_CFLAGS)
PG_CPPFLAGS += -Isrc/core -Isrc/glue $(CALO_ASSERTS)
# the client loader is installed beside the server's programs (pg_config --bindir)
SCRIPTS_built = tools/calo_recon_load
EXTRA_CLEAN = results regression.diffs regression.out test/unit/build test/fuzz/build \
              tools/calo_recon_load tools/calo_recon_gen \
              $(addprefix test/probe/calo_recon_probe,.o .bc $(DLSUFFIX))

# installcheck is defined below: it wraps PGXS's two runs in fixtures
NO_INSTALLCHECK = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The plain C cores (src/core) compile without any include path of the
# server, and with no include path into src/glue, so a PostgreSQL header (or
# a glue header) in a core fails the build.
CORE_OBJS = $(patsubst %.c,%.o,$(CORE_SRCS))
$(CORE_OBJS) $(CORE_OBJS:.o=.bc): override CPPFLAGS := $(filter-out -I%,$(CPPFLAGS)) -Isrc/core

sql/calo_recon--$(EXTVERSION).sql: $(PARTS) calo_recon.control
	cat $(PARTS) > $@

# `make installcheck` works on any server a superuser points it at:
# test/fixtures/setup.sql makes the fixtures in private folders under the
# server's configured import and export directories and prints the PGOPTIONS
# that point every test session there; cleanup.sql removes the folders after
# both runs, whether they passed or not.  The fixtures include the test probe
# (test/probe), a module of test-only functions that is never installed.
FIXTURE_PSQL = '$(bindir)/psql' -X -q -At -v ON_ERROR_STOP=1 -d postgres
installcheck:
	@$(MAKE) -s -C test/probe PG_CONFIG='$(PG_CONFIG)'
	@fixture_options=$$($(FIXTURE_PSQL) -f test/fixtures/setup.sql) || exit 1; \
	export PGOPTIONS="$${PGOPTIONS:-} $$fixture_options"; status=0; \
	{ $(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS); } || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  { $(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION); } || status=$$?; fi; \
	$(FIXTURE_PSQL) -f test/fixtures/cleanup.sql || status=1; \
	exit $$status

.PHONY: unit fuzz fuzz-run tools
tools:
	$(MAKE) -C tools PG_CONFIG=$(PG_CONFIG)
tools/calo_recon_load: tools/calo_recon_load.c src/core/logfile.c src/core/logfile.h tools/Makefile mk/build_flags.mk
	$(MAKE) -C tools calo_recon_load PG_CONFIG=$(PG_CONFIG)
unit:
	$(MAKE) -C test/unit
fuzz:
	$(MAKE) -C test/fuzz
fuzz-run:
	$(MAKE) -C test/fuzz run

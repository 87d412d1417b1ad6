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
DATA_built = sql/calo_recon--$(EXTVERSION).sql
DATA       = $(filter-out $(DATA_built),$(wildcard sql/calo_recon--*.sql))

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=.

SHLIB_LINK += -lz -lxlsxwriter
# PostgreSQL's function-manager macros leave fcinfo unused and its headers
# compare signed with unsigned, so those two -Wextra checks stay off for glue.
PG_CFLAGS  += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -Isrc
EXTRA_CLEAN = results regression.diffs regression.out test/unit/build test/fuzz/build \
              tools/calo_recon_load tools/calo_recon_gen

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/calo_recon--$(EXTVERSION).sql: $(sort $(wildcard sql/install/*.sql)) calo_recon.control
	cat $(sort $(wildcard sql/install/*.sql)) > $@

.PHONY: unit fuzz fuzz-run tools
tools:
	$(MAKE) -C tools PG_CONFIG=$(PG_CONFIG)
unit:
	$(MAKE) -C test/unit
fuzz:
	$(MAKE) -C test/fuzz
fuzz-run:
	$(MAKE) -C test/fuzz run

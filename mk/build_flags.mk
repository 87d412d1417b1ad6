# Build flags shared by every C build of calo_recon that ships (the module,
# tools/; the test probe, test/probe, builds as the module does). The shipped
# flags warn; they never fail a user's build on a warning a newer compiler
# invents:
#   WERROR=1 (or CI=true, as CI sets)    warnings are errors (scripts/test.sh, .ci/run)
#   ASSERT_CHECKING=1                    Assert()/StaticAssert of the glue and cores
#                                        active, as in an --enable-cassert server
CALO_WARNINGS = -Wall -Wextra
ifneq ($(filter 1 yes true,$(WERROR) $(CI)),)
CALO_WARNINGS += -Werror
endif
CALO_ASSERTS =
ifneq ($(filter 1 yes true,$(ASSERT_CHECKING)),)
CALO_ASSERTS = -DUSE_ASSERT_CHECKING
endif
# PostgreSQL's function-manager macros leave fcinfo unused and its headers
# compare signed with unsigned, so those two -Wextra checks stay off for glue
# (the module's and the test probe's).
CALO_GLUE_CFLAGS = $(CALO_WARNINGS) -Wno-unused-parameter -Wno-sign-compare \
                   -Wno-missing-field-initializers

/*
 * unit.h: a minimal harness for the C unit tests of the plain cores.
 * Each test binary calls CHECK* in any number of test functions and ends
 * main() with `return unit_summary("name");`.
 */
#ifndef CALO_UNIT_H
#define CALO_UNIT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int unit_passed;
static int unit_failed;

#define CHECK(cond) \
	do { \
		if (cond) unit_passed++; \
		else { unit_failed++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		if (g_ && w_ && strcmp(g_, w_) == 0) unit_passed++; \
		else { unit_failed++; fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } \
	} while (0)

#define CHECK_CLOSE(got, want, reltol) \
	do { \
		double g_ = (got), w_ = (want); \
		double d_ = fabs(g_ - w_), s_ = fabs(w_) > 1.0 ? fabs(w_) : 1.0; \
		if (d_ <= (reltol) * s_) unit_passed++; \
		else { unit_failed++; fprintf(stderr, "%s:%d: got %.17g, want %.17g\n", __FILE__, __LINE__, g_, w_); } \
	} while (0)

static inline int
unit_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}

#endif

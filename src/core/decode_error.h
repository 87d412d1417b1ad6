/*
 * decode_error.h: how the plain C decoders (scaler, iforest) report why a
 * value is invalid: a message formatted into the caller's buffer, so the
 * glue can put it in errdetail without the cores knowing PostgreSQL.
 */
#ifndef CALO_DECODE_ERROR_H
#define CALO_DECODE_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int decode_fail(char *err, size_t errlen, const char *fmt,...);

/* Formats the reason into err (when given) and returns -1, the decoders' failure value. */
static inline int
decode_fail(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err && errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#endif

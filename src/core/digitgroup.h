/*
 * digitgroup.h: a number's decimal text with its integer digits grouped by
 * thousands ("-1234567.890" becomes "-1,234,567.890"), as a finance reader
 * expects them on the dashboard page.  Plain C, no PostgreSQL header.
 */
#ifndef DIGITGROUP_H
#define DIGITGROUP_H

#include <stddef.h>

/*
 * The grouped text of number_text into out (out_size bytes, NUL included).
 * Text that is not a plain decimal (sign, digits, optional fraction: "NaN",
 * "Infinity", "1e5") is copied as it is.  Returns the length of the result,
 * or (size_t) -1 when it does not fit (out then holds "").
 */
extern size_t digit_group(const char *number_text, char *out, size_t out_size);

/* Bytes of out that digit_group needs for a text of len bytes, NUL included. */
#define DIGIT_GROUP_SIZE(len) ((len) + (len) / 3 + 2)

#endif

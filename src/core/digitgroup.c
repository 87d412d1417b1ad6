/*
 * digitgroup.c: thousands separators in a number's decimal text (digitgroup.h).
 */
#include "digitgroup.h"

#include <string.h>

/* The number of integer digits when text is a plain decimal, else -1. */
static int
integer_digits(const char *text)
{
	const char *p = text;
	int			digits = 0;

	if (*p == '-' || *p == '+')
		p++;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (digits == 0)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	return *p == '\0' ? digits : -1;
}

size_t
digit_group(const char *number_text, char *out, size_t out_size)
{
	size_t		len = strlen(number_text);
	int			digits = integer_digits(number_text);
	const char *p = number_text;
	size_t		n = 0;

	if (out_size == 0)
		return (size_t) -1;
	if (digits < 0)
	{
		if (len + 1 > out_size)
		{
			out[0] = '\0';
			return (size_t) -1;
		}
		memcpy(out, number_text, len + 1);
		return len;
	}
	if (len + (size_t) (digits - 1) / 3 + 1 > out_size)
	{
		out[0] = '\0';
		return (size_t) -1;
	}
	if (*p == '-' || *p == '+')
		out[n++] = *p++;
	for (; digits > 0; digits--)
	{
		out[n++] = *p++;
		if (digits > 1 && (digits - 1) % 3 == 0)
			out[n++] = ',';
	}
	while (*p)
		out[n++] = *p++;
	out[n] = '\0';
	return n;
}

/*
 * Fuzz target of the balance core: any text either fails to parse with a
 * status or round-trips exactly through bal_format; base-10000 digits from
 * the same bytes agree with bal_parse of their decimal form; the rules
 * never overflow silently.
 */
#include <stdio.h>
#include <string.h>

#include "balance.h"

int			LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	bal_dec		v,
				w;
	char		buf[BAL_FORMAT_MAX];
	int			len;

	if (bal_parse((const char *) data, size, &v) == BAL_OK)
	{
		len = bal_format(v, buf);
		if (bal_parse(buf, (size_t) len, &w) != BAL_OK || w != v)
			__builtin_trap();
	}

	/* digits: pairs of bytes, weight and sign from the first byte */
	if (size >= 3)
	{
		uint16_t	digits[16];
		int			nd = 0;
		size_t		i;
		int			weight = (int) (data[0] % 16) - 8;
		bool		neg = data[0] & 0x80;

		for (i = 1; i + 1 < size && nd < 16; i += 2)
			digits[nd++] = (uint16_t) (((data[i] << 8) | data[i + 1]) % 10000);
		if (bal_from_nbase(digits, nd, weight, neg, &v) == BAL_OK)
		{
			bal_check	c;

			len = bal_format(v, buf);
			if (bal_parse(buf, (size_t) len, &w) != BAL_OK || w != v)
				__builtin_trap();
			/* rules on extreme operands: a status, never a wrapped value */
			c = bal_check_arithmetic(BAL_CREDIT, v, -v, v, v, bal_tolerance(2));
			if (c.finding != BAL_OUT_OF_RANGE && c.difference != -(v - v) - (v + v))
				__builtin_trap();
			c = bal_check_chain(-v, v, bal_tolerance(3));
			if (c.finding != BAL_OUT_OF_RANGE && c.difference != v + v)
				__builtin_trap();
		}
	}
	return 0;
}

/*
 * balance.c: exact fixed-point balance math and the reconciliation rules
 * (arithmetic, chain, overdraft). See balance.h.
 */
#include "balance.h"

#include <string.h>

/* 10^38: one past the largest representable scaled magnitude. */
static bal_dec
bal_limit(void)
{
	static const bal_dec ten19 = (bal_dec) 10000000000000000000ULL;

	return ten19 * ten19;
}

#define BAL_P19 ((bal_dec) 10000000000000000000ULL)

/* 10^0 .. 10^38, as constant expressions */
static const bal_dec bal_pow10_table[39] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
	100000000000000LL, 1000000000000000LL, 10000000000000000LL,
	100000000000000000LL, 1000000000000000000LL, BAL_P19,
	BAL_P19 * 10, BAL_P19 * 100, BAL_P19 * 1000, BAL_P19 * 10000, BAL_P19 * 100000,
	BAL_P19 * 1000000, BAL_P19 * 10000000, BAL_P19 * 100000000, BAL_P19 * 1000000000,
	BAL_P19 * 10000000000LL, BAL_P19 * 100000000000LL, BAL_P19 * 1000000000000LL,
	BAL_P19 * 10000000000000LL, BAL_P19 * 100000000000000LL,
	BAL_P19 * 1000000000000000LL, BAL_P19 * 10000000000000000LL,
	BAL_P19 * 100000000000000000LL, BAL_P19 * 1000000000000000000LL, BAL_P19 * BAL_P19
};

static inline bal_dec
bal_pow10(int n)
{
	return bal_pow10_table[n];
}

const char *
bal_status_name(bal_status status)
{
	switch (status)
	{
		case BAL_OK:
			return "ok";
		case BAL_SYNTAX:
			return "not a decimal number";
		case BAL_OVERFLOW:
			return "absolute value not below 10^20";
		case BAL_TOO_PRECISE:
			return "more than 18 decimal places";
		case BAL_SPECIAL:
			return "NaN or infinity";
	}
	return "unknown";
}

/* Appends one decimal digit to a magnitude, with the range check. */
static bal_status
bal_push_digit(bal_dec *mag, int digit)
{
	bal_dec		limit = bal_limit();

	if (*mag > (limit - 1 - digit) / 10)
		return BAL_OVERFLOW;
	*mag = *mag * 10 + digit;
	return BAL_OK;
}

static bool
bal_word(const char *s, size_t len, const char *word)
{
	size_t		n = strlen(word);
	size_t		i;

	if (len != n)
		return false;
	for (i = 0; i < n; i++)
	{
		char		c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != word[i])
			return false;
	}
	return true;
}

bal_status
bal_parse(const char *text, size_t len, bal_dec *out)
{
	size_t		i = 0;
	bool		negative = false;
	bool		any_digit = false;
	int			decimals = 0;
	bal_dec		mag = 0;
	bal_status	st;

	if (len > 0 && (text[0] == '-' || text[0] == '+'))
	{
		negative = text[0] == '-';
		i = 1;
	}
	if (bal_word(text + i, len - i, "nan") || bal_word(text + i, len - i, "infinity")
		|| bal_word(text + i, len - i, "inf"))
		return BAL_SPECIAL;

	for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
	{
		any_digit = true;
		if ((st = bal_push_digit(&mag, text[i] - '0')) != BAL_OK)
			return st;
	}
	if (i < len && text[i] == '.')
	{
		for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++)
		{
			any_digit = true;
			if (decimals == BAL_SCALE_DIGITS)
			{
				if (text[i] != '0')
					return BAL_TOO_PRECISE;
				continue;
			}
			decimals++;
			if ((st = bal_push_digit(&mag, text[i] - '0')) != BAL_OK)
				return st;
		}
	}
	if (!any_digit || i != len)
		return BAL_SYNTAX;
	for (; decimals < BAL_SCALE_DIGITS; decimals++)
		if ((st = bal_push_digit(&mag, 0)) != BAL_OK)
			return st;
	*out = negative ? -mag : mag;
	return BAL_OK;
}

bal_status
bal_from_nbase(const uint16_t *digits, int ndigits, int weight, bool negative,
			   bal_dec *out)
{
	bal_dec		limit = bal_limit();
	bal_dec		mag = 0;
	int			i;
	int			last_exp10 = 4 * (weight - ndigits + 1) + BAL_SCALE_DIGITS;

	/*
	 * Fast path for the usual balance: at most 4 base-10000 digits (16
	 * decimal digits fit an int64), within the exact range.
	 */
	if (ndigits > 0 && ndigits <= 4 && last_exp10 >= 0 && last_exp10 + 4 * ndigits <= 38)
	{
		int64_t		acc = 0;

		for (i = 0; i < ndigits; i++)
		{
			if (digits[i] > 9999)
				return BAL_SYNTAX;
			acc = acc * 10000 + digits[i];
		}
		mag = (bal_dec) acc * bal_pow10(last_exp10);
		if (mag >= limit)
			return BAL_OVERFLOW;
		*out = negative ? -mag : mag;
		return BAL_OK;
	}

	for (i = 0; i < ndigits; i++)
	{
		int			d = digits[i];
		/* decimal exponent of this digit's unit once scaled by 10^18 */
		long		exp10 = 4L * (weight - i) + BAL_SCALE_DIGITS;
		bal_dec		term;

		if (d > 9999)
			return BAL_SYNTAX;
		if (d == 0)
			continue;
		if (exp10 < 0)
		{
			/* only exp10 == -2 can still be whole: the digit's last two places */
			if (exp10 < -2 || d % 100 != 0)
				return BAL_TOO_PRECISE;
			term = d / 100;
		}
		else
		{
			/* d * 10^exp10 < 10^38, checked before multiplying */
			if (exp10 >= 38 || (exp10 >= 34 && d >= bal_pow10((int) (38 - exp10))))
				return BAL_OVERFLOW;
			term = (bal_dec) d * bal_pow10((int) exp10);
		}
		if (mag >= limit - term)
			return BAL_OVERFLOW;
		mag += term;
	}
	*out = negative ? -mag : mag;
	return BAL_OK;
}

int
bal_format(bal_dec value, char *buf)
{
	char		tmp[BAL_FORMAT_MAX];
	int			n = 0;
	int			len = 0;
	unsigned __int128 mag;
	int			first;
	int			i;

	mag = (unsigned __int128) (value < 0 ? -value : value);	/* |value| < 10^38 */
	do
	{
		tmp[n++] = (char) ('0' + (int) (mag % 10));
		mag /= 10;
	} while (mag > 0);
	while (n <= BAL_SCALE_DIGITS)
		tmp[n++] = '0';
	/* tmp holds the scaled digits, least significant first */
	first = 0;
	while (first < BAL_SCALE_DIGITS && tmp[first] == '0')
		first++;
	if (value < 0)
		buf[len++] = '-';
	for (i = n - 1; i >= BAL_SCALE_DIGITS; i--)
		buf[len++] = tmp[i];
	if (first < BAL_SCALE_DIGITS)
	{
		buf[len++] = '.';
		for (i = BAL_SCALE_DIGITS - 1; i >= first; i--)
			buf[len++] = tmp[i];
	}
	buf[len] = '\0';
	return len;
}

bal_status
bal_add(bal_dec a, bal_dec b, bal_dec *out)
{
	bal_dec		limit = bal_limit();
	bal_dec		r;

	if (__builtin_add_overflow(a, b, &r) || r >= limit || r <= -limit)
		return BAL_OVERFLOW;
	*out = r;
	return BAL_OK;
}

bal_status
bal_sub(bal_dec a, bal_dec b, bal_dec *out)
{
	bal_dec		limit = bal_limit();
	bal_dec		r;

	if (__builtin_sub_overflow(a, b, &r) || r >= limit || r <= -limit)
		return BAL_OVERFLOW;
	*out = r;
	return BAL_OK;
}

bal_dec
bal_abs(bal_dec a)
{
	return a < 0 ? -a : a;
}

int
bal_cmp(bal_dec a, bal_dec b)
{
	return a < b ? -1 : (a > b ? 1 : 0);
}

int
bal_minor_unit(int minor_unit)
{
	return minor_unit < 0 || minor_unit > BAL_SCALE_DIGITS ? BAL_DEFAULT_MINOR_UNIT : minor_unit;
}

bal_dec
bal_tolerance(int minor_unit)
{
	minor_unit = bal_minor_unit(minor_unit);
	/* half of 10^-minor_unit, scaled: 5 * 10^(17 - minor_unit) */
	if (minor_unit == BAL_SCALE_DIGITS)
		return 0;				/* below the resolution: every difference breaks */
	return 5 * bal_pow10(BAL_SCALE_DIGITS - 1 - minor_unit);
}

const char *
bal_finding_name(bal_finding finding)
{
	switch (finding)
	{
		case BAL_NONE:
			return "none";
		case BAL_CHAIN:
			return "chain";
		case BAL_CHAIN_DRIFT:
			return "chain_drift";
		case BAL_ARITHMETIC:
			return "arithmetic";
		case BAL_DRIFT:
			return "drift";
		case BAL_OUT_OF_RANGE:
			return "out_of_range";
		case BAL_OVERDRAFT:
			return "overdraft";
	}
	return "unknown";
}

bal_finding
bal_finding_from_name(const char *name, size_t len)
{
	int			f;

	for (f = BAL_CHAIN; f <= BAL_OVERDRAFT; f++)
	{
		const char *candidate = bal_finding_name((bal_finding) f);

		if (strlen(candidate) == len && memcmp(candidate, name, len) == 0)
			return (bal_finding) f;
	}
	return BAL_NONE;
}

bool
bal_finding_is_break(bal_finding finding)
{
	return finding == BAL_CHAIN || finding == BAL_ARITHMETIC
		|| finding == BAL_OUT_OF_RANGE;
}

bool
bal_is_credit(bal_type type, int new_vs_old)
{
	if (type == BAL_LEGACY)
		return new_vs_old >= 0;	/* no change counts as a credit */
	return type == BAL_CREDIT;
}

bool
bal_is_overdraft(int new_balance_sign)
{
	return new_balance_sign < 0;
}

bal_finding
bal_classify(bal_dec difference, bal_dec tolerance, bal_finding break_kind,
			 bal_finding drift_kind)
{
	bal_dec		mag = bal_abs(difference);

	if (mag == 0)
		return BAL_NONE;
	return mag >= tolerance ? break_kind : drift_kind;
}

static bal_check
bal_out_of_range(void)
{
	bal_check	c;

	memset(&c, 0, sizeof(c));
	c.finding = BAL_OUT_OF_RANGE;
	return c;
}

bal_check
bal_check_arithmetic(bal_type type, bal_dec amount, bal_dec vat,
					 bal_dec old_balance, bal_dec new_balance, bal_dec tolerance)
{
	bal_check	c;
	bal_dec		net;
	bool		credit;

	memset(&c, 0, sizeof(c));
	if (bal_sub(amount, vat, &net) != BAL_OK)
		return bal_out_of_range();
	credit = bal_is_credit(type, bal_cmp(new_balance, old_balance));
	if ((credit ? bal_add(old_balance, net, &c.expected)
		 : bal_sub(old_balance, net, &c.expected)) != BAL_OK)
		return bal_out_of_range();
	c.actual = new_balance;
	if (bal_sub(c.actual, c.expected, &c.difference) != BAL_OK)
		return bal_out_of_range();
	c.finding = bal_classify(c.difference, tolerance, BAL_ARITHMETIC, BAL_DRIFT);
	return c;
}

bal_check
bal_check_chain(bal_dec prev_new_balance, bal_dec old_balance, bal_dec tolerance)
{
	bal_check	c;

	memset(&c, 0, sizeof(c));
	c.expected = prev_new_balance;
	c.actual = old_balance;
	if (bal_sub(old_balance, prev_new_balance, &c.difference) != BAL_OK)
		return bal_out_of_range();
	c.finding = bal_classify(c.difference, tolerance, BAL_CHAIN, BAL_CHAIN_DRIFT);
	return c;
}

void
bal_walk_init(bal_walk *walk)
{
	memset(walk, 0, sizeof(*walk));
}

bal_check
bal_walk_chain(bal_walk *walk, bool valid, bal_dec old_balance,
			   bal_dec new_balance, bal_dec tolerance)
{
	bal_check	c;

	memset(&c, 0, sizeof(c));
	if (valid && walk->has_prev && walk->prev_valid)
		c = bal_check_chain(walk->prev_new_balance, old_balance, tolerance);
	walk->has_prev = true;
	walk->prev_valid = valid;
	walk->prev_new_balance = valid ? new_balance : 0;
	return c;
}

bool
bal_walk_first_break(bal_walk *walk, bal_finding finding)
{
	if (!bal_finding_is_break(finding) || walk->had_break)
		return false;
	walk->had_break = true;
	return true;
}

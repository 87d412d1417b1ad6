/*
 * lpnum.c: numbers and timestamps of the log parser (plain C core); see
 * lpnum.h.
 */
#include "lpnum.h"
#include "lpbuf.h"
#include "lptext.h"

lpnum_status
lpnum_check(lp_buf *b, const char *s, size_t n, bool strict_json)
{
	size_t		i = 0,
				int_start,
				int_len,
				frac_len = 0;
	bool		neg = false,
				too_big = n > LP_MAX_NUMBER_LEN;

	if (n == 0)
		return LPNUM_BAD;
	if (s[0] == '-')
		neg = true, i++;
	else if (s[0] == '+' && !strict_json)
		i++;
	int_start = i;
	while (i < n && lptext_is_digit(s[i]))
		i++;
	int_len = i - int_start;
	if (int_len > 1 && s[int_start] == '0')
		return LPNUM_BAD;		/* leading zero: octal-looking in JavaScript */
	if (i < n && s[i] == '.')
	{
		size_t		frac_start = ++i;

		while (i < n && lptext_is_digit(s[i]))
			i++;
		frac_len = i - frac_start;
		if (frac_len == 0)
			return LPNUM_BAD;
	}
	if (int_len == 0 && (strict_json || frac_len == 0))
		return LPNUM_BAD;
	if (i < n && (s[i] == 'e' || s[i] == 'E'))
	{
		size_t		digits_start;
		long		exponent = 0;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		digits_start = i;
		while (i < n && lptext_is_digit(s[i]))
		{
			if (exponent <= LP_MAX_EXPONENT)
				exponent = exponent * 10 + (s[i] - '0');
			i++;
		}
		if (i == digits_start)
			return LPNUM_BAD;
		if (exponent > LP_MAX_EXPONENT)
			too_big = true;
	}
	if (i != n)
		return LPNUM_BAD;
	if (too_big)
		return LPNUM_TOO_BIG;
	if (b != NULL)
	{
		if (neg)
			lpbuf_putc(b, '-');
		if (int_len == 0)
			lpbuf_putc(b, '0');
		lpbuf_put(b, s + int_start, n - int_start);
	}
	return LPNUM_OK;
}

static int64_t
lpnum_days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t) era * 146097 + doe - 719468;
}

static int
lpnum_digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

int
lp_parse_timestamp(const char *s, size_t n, int64_t *unix_us)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				ms,
				dim;

	if (!lpnum_timestamp_shape(s, n))
		return -1;
	y = lpnum_digits(s, 4);
	mo = lpnum_digits(s + 5, 2);
	d = lpnum_digits(s + 8, 2);
	h = lpnum_digits(s + 11, 2);
	mi = lpnum_digits(s + 14, 2);
	sec = lpnum_digits(s + 17, 2);
	ms = lpnum_digits(s + 20, 3);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return 0;
	dim = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	if (d > dim)
		return 0;
	if (unix_us)
		*unix_us = ((lpnum_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + ms) * 1000;
	return 1;
}

/*
 * The decimal exponent of the leading non-zero digit of a LPNUM_OK token
 * (1234.5: 3, 0.05: -2, 1.5e20: 20); false when the number is zero.
 */
static bool
lpnum_magnitude(const char *s, size_t n, long *magnitude)
{
	size_t		i = 0,
				start;
	long		mag = 0,
				exponent = 0;
	bool		nonzero = false,
				negative_exponent = false;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < n && s[i] == '0')
		i++;
	start = i;
	while (i < n && lptext_is_digit(s[i]))
		i++;
	if (i > start)
	{
		nonzero = true;
		mag = (long) (i - start) - 1;
	}
	if (i < n && s[i] == '.')
	{
		start = ++i;
		while (i < n && s[i] == '0')
			i++;
		if (!nonzero && i < n && lptext_is_digit(s[i]))
		{
			nonzero = true;
			mag = -(long) (i - start) - 1;
		}
		while (i < n && lptext_is_digit(s[i]))
			i++;
	}
	if (!nonzero)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			negative_exponent = s[i++] == '-';
		for (; i < n && lptext_is_digit(s[i]); i++)
			if (exponent <= LP_MAX_EXPONENT)
				exponent = exponent * 10 + (s[i] - '0');
	}
	*magnitude = mag + (negative_exponent ? -exponent : exponent);
	return true;
}

bool
lp_money_in_range(const char *number, size_t n)
{
	long		magnitude;

	if (lpnum_check(NULL, number, n, false) != LPNUM_OK)
		return false;
	return !lpnum_magnitude(number, n, &magnitude) || magnitude < LP_MONEY_LIMIT_POWER;
}

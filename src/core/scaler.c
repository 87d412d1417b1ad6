/*
 * scaler.c: StandardScaler core: exact fixed-point sums, their exact merge, the
 * correctly rounded mean and variance, sklearn's constant-feature rule, and the
 * validated binary forms (model and running fit).
 */
#include "scaler.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decode_error.h"
#include "le_bytes.h"

/*
 * Headroom: |x| < 2^1024 is below 2^2098 units of 2^-1074 and x * x below
 * 2^4196 units of 2^-2148; with 2^63 rows the sums stay below 2^2161 and
 * 2^4259, within 68 and 134 digits (2176 and 4288 bits).  A digit takes less
 * than 2^33 per row, so 2^28 rows between normalizations keep it below 2^62.
 */
#define SCL_PENDING_LIMIT (1 << 28)

size_t
scl_acc_size(int n_features)
{
	return sizeof(scl_acc) + (size_t) n_features * SCL_DIGITS * sizeof(int64_t);
}

void
scl_acc_init(scl_acc *acc, int n_features)
{
	acc->n = 0;
	acc->n_features = n_features;
	acc->pending = 0;
	memset(acc->digits, 0, (size_t) n_features * SCL_DIGITS * sizeof(int64_t));
}

/* Carries every digit but the last into [0, 2^32). */
static void
normalize(int64_t *d, int len)
{
	for (int i = 0; i < len - 1; i++)
	{
		int64_t		low = d[i] & INT64_C(0xFFFFFFFF);

		d[i + 1] += (d[i] - low) / (INT64_C(1) << 32);
		d[i] = low;
	}
}

static void
normalize_all(scl_acc *acc)
{
	for (int j = 0; j < acc->n_features; j++)
	{
		normalize(acc->digits + (size_t) j * SCL_DIGITS, SCL_SUM_DIGITS);
		normalize(acc->digits + (size_t) j * SCL_DIGITS + SCL_SUM_DIGITS, SCL_SQUARES_DIGITS);
	}
	acc->pending = 0;
}

/* Adds v * 2^bit (v < 2^53) into the digits, negated when negative. */
static inline void
add_mantissa(int64_t *d, uint64_t v, int bit, int64_t sign)
{
	int			r = bit & 31;
	uint64_t	lo = v << r;	/* v < 2^53, r < 32: 85 bits, the top in hi */
	uint64_t	hi = r ? v >> (64 - r) : 0;

	d += bit >> 5;
	d[0] += sign * (int64_t) (lo & 0xFFFFFFFF);
	d[1] += sign * (int64_t) (lo >> 32);
	d[2] += sign * (int64_t) hi;
}

/* Adds v * 2^bit (v < 2^106, as hi:lo, bit even) into the digits. */
static inline void
add_square(int64_t *d, uint64_t vlo, uint64_t vhi, int bit)
{
	int			r = bit & 31;
	uint64_t	w0 = vlo << r,
				w1 = (vhi << r) | (r ? vlo >> (64 - r) : 0),
				w2 = r ? vhi >> (64 - r) : 0;

	d += bit >> 5;
	d[0] += (int64_t) (w0 & 0xFFFFFFFF);
	d[1] += (int64_t) (w0 >> 32);
	d[2] += (int64_t) (w1 & 0xFFFFFFFF);
	d[3] += (int64_t) (w1 >> 32);
	d[4] += (int64_t) w2;
}

void
scl_acc_add(scl_acc *acc, const double *x)
{
	if (acc->pending >= SCL_PENDING_LIMIT)
		normalize_all(acc);
	acc->n++;
	acc->pending++;
	for (int j = 0; j < acc->n_features; j++)
	{
		int64_t    *sum = acc->digits + (size_t) j * SCL_DIGITS;
		uint64_t	bits,
					m;
		int			q;
		unsigned __int128 mm;

		memcpy(&bits, &x[j], sizeof bits);
		m = bits & ((UINT64_C(1) << 52) - 1);
		q = (int) ((bits >> 52) & 0x7FF);
		/* x = m * 2^(q - 1075), m < 2^53 (subnormals: m * 2^-1074) */
		if (q == 0)
			q = 1;
		else
			m |= UINT64_C(1) << 52;
		if (m == 0)
			continue;
		add_mantissa(sum, m, q - 1, (bits >> 63) ? -1 : 1);
		mm = (unsigned __int128) m * m;
		add_square(sum + SCL_SUM_DIGITS, (uint64_t) mm, (uint64_t) (mm >> 64), 2 * (q - 1));
	}
}

void
scl_acc_merge(scl_acc *a, const scl_acc *b)
{
	size_t		len = (size_t) a->n_features * SCL_DIGITS;

	if (b->n == 0)
		return;
	/* both below 2^62 per digit before, so the sum cannot overflow */
	if (a->pending + b->pending >= SCL_PENDING_LIMIT)
		normalize_all(a);
	for (size_t i = 0; i < len; i++)
		a->digits[i] += b->digits[i];
	a->pending += b->pending + 1;
	a->n += b->n;
	if (a->pending >= SCL_PENDING_LIMIT)
		normalize_all(a);
}

/* ------------------------------------------ exact finishing (magnitudes) */

/* A magnitude: base-2^32 limbs, least significant first. */
#define MAG_LIMBS (2 * SCL_SUM_DIGITS + 2)

/* Normalized signed digits into sign and magnitude; 1 when negative. */
static int
to_magnitude(const int64_t *digits, int len, uint32_t *mag)
{
	int64_t		d[SCL_SQUARES_DIGITS];
	int			negative;

	memcpy(d, digits, (size_t) len * sizeof(int64_t));
	normalize(d, len);
	negative = d[len - 1] < 0;
	if (negative)
	{
		/* two's complement over len digits: complement, then add one */
		uint64_t	carry = 1;

		for (int i = 0; i < len; i++)
		{
			uint64_t	v = (uint64_t) (~(uint32_t) d[i]) + carry;

			mag[i] = (uint32_t) v;
			carry = v >> 32;
		}
	}
	else
		for (int i = 0; i < len; i++)
			mag[i] = (uint32_t) d[i];
	return negative;
}

/* out (len + 2 limbs) = a (len limbs) * v */
static void
mag_mul_small(const uint32_t *a, int len, uint64_t v, uint32_t *out)
{
	unsigned __int128 carry = 0;

	for (int i = 0; i < len; i++)
	{
		unsigned __int128 t = (unsigned __int128) a[i] * v + carry;

		out[i] = (uint32_t) t;
		carry = t >> 32;
	}
	out[len] = (uint32_t) carry;
	out[len + 1] = (uint32_t) (carry >> 32);
}

/* out (2 * len limbs) = a * a */
static void
mag_square(const uint32_t *a, int len, uint32_t *out)
{
	memset(out, 0, 2 * (size_t) len * sizeof(uint32_t));
	for (int i = 0; i < len; i++)
	{
		uint64_t	carry = 0;

		if (a[i] == 0)
			continue;
		for (int j = 0; j < len; j++)
		{
			uint64_t	t = (uint64_t) a[i] * a[j] + out[i + j] + carry;

			out[i + j] = (uint32_t) t;
			carry = t >> 32;
		}
		out[i + len] = (uint32_t) carry;
	}
}

/* a -= b (same length); returns 1 when b > a (a then wraps). */
static int
mag_sub(uint32_t *a, const uint32_t *b, int len)
{
	int64_t		borrow = 0;

	for (int i = 0; i < len; i++)
	{
		int64_t		t = (int64_t) a[i] - b[i] - borrow;

		borrow = t < 0;
		a[i] = (uint32_t) (t + (borrow ? (INT64_C(1) << 32) : 0));
	}
	return (int) borrow;
}

/* a /= v in place; returns the remainder. */
static uint64_t
mag_div_small(uint32_t *a, int len, uint64_t v)
{
	uint64_t	rem = 0;

	for (int i = len - 1; i >= 0; i--)
	{
		unsigned __int128 cur = ((unsigned __int128) rem << 32) | a[i];

		a[i] = (uint32_t) (cur / v);
		rem = (uint64_t) (cur % v);
	}
	return rem;
}

static int
mag_bit(const uint32_t *a, int pos)
{
	return pos < 0 ? 0 : (int) ((a[pos / 32] >> (pos % 32)) & 1);
}

static int
mag_any_below(const uint32_t *a, int pos)
{
	for (int i = 0; i < pos; i++)
		if (mag_bit(a, i))
			return 1;
	return 0;
}

/*
 * (a + f) * 2^scale rounded to the nearest double (ties to even), where
 * 0 <= f < 1 and f > 0 exactly when sticky; +-HUGE_VAL beyond double's range.
 */
static double
mag_to_double(const uint32_t *a, int len, int scale, int sticky)
{
	int			top = -1,
				p;
	uint64_t	m = 0;
	int			round_bit;

	for (int i = len * 32 - 1; i >= 0; i--)
		if (mag_bit(a, i))
		{
			top = i;
			break;
		}
	if (top < 0)
		return 0.0;
	/* the leading bit weighs 2^(top + scale); below 2^-1022 fewer bits remain */
	p = 53;
	if (top + scale < -1022)
		p = 53 - (-1022 - (top + scale));
	if (top + scale > 1023)
		return HUGE_VAL;
	if (p < 0)
		return 0.0;				/* below half the least subnormal */
	for (int k = 0; k < p; k++)
		m = (m << 1) | (uint64_t) mag_bit(a, top - k);
	round_bit = mag_bit(a, top - p);
	sticky = sticky || mag_any_below(a, top - p);
	if (round_bit && (sticky || (m & 1)))
		m++;
	return ldexp((double) m, top - p + 1 + scale);
}

/*
 * Mean and population variance of feature j, correctly rounded from the
 * exact sums: mean = S1 / n, var = (n * S2 - S1^2) / n^2.  Returns -1 when
 * the sums are inconsistent (n * S2 < S1^2, which no rows give).
 */
static int
exact_moments(const scl_acc *acc, int j, double *mean, double *var)
{
	const int64_t *sum = acc->digits + (size_t) j * SCL_DIGITS;
	uint32_t	s1[SCL_SUM_DIGITS],
				s2[SCL_SQUARES_DIGITS],
				s1sq[MAG_LIMBS],
				ns2[MAG_LIMBS];
	uint64_t	n = (uint64_t) acc->n;
	int			negative,
				sticky;

	negative = to_magnitude(sum, SCL_SUM_DIGITS, s1);
	if (to_magnitude(sum + SCL_SUM_DIGITS, SCL_SQUARES_DIGITS, s2))
		return -1;
	mag_square(s1, SCL_SUM_DIGITS, s1sq);
	s1sq[2 * SCL_SUM_DIGITS] = s1sq[2 * SCL_SUM_DIGITS + 1] = 0;
	mag_mul_small(s2, SCL_SQUARES_DIGITS, n, ns2);
	ns2[SCL_SQUARES_DIGITS + 2] = ns2[SCL_SQUARES_DIGITS + 3] = 0;
	if (mag_sub(ns2, s1sq, MAG_LIMBS))
		return -1;
	sticky = mag_div_small(ns2, MAG_LIMBS, n) != 0;
	sticky |= mag_div_small(ns2, MAG_LIMBS, n) != 0;
	*var = mag_to_double(ns2, MAG_LIMBS, -2148, sticky);
	sticky = mag_div_small(s1, SCL_SUM_DIGITS, n) != 0;
	*mean = mag_to_double(s1, SCL_SUM_DIGITS, -1074, sticky);
	if (negative)
		*mean = -*mean;
	return 0;
}

double
scl_scale_of(double var, double mean, int64_t n)
{
	double		eps = DBL_EPSILON;
	double		dn = (double) n;
	double		bound = dn * eps * var + (dn * mean * eps) * (dn * mean * eps);

	return var <= bound ? 1.0 : sqrt(var);
}

int
scl_acc_finish(const scl_acc *acc, scl_model *model, char *err, size_t errlen)
{
	int			k = acc->n_features;

	model->n_samples = acc->n;
	model->n_features = k;
	for (int j = 0; j < k; j++)
	{
		double		mean,
					var;

		if (exact_moments(acc, j, &mean, &var) != 0)
			return decode_fail(err, errlen, "the sums of feature %d are inconsistent", j + 1);
		if (!isfinite(var))
			return decode_fail(err, errlen, "the variance of feature %d overflows double precision", j + 1);
		model->mean[j] = mean;
		model->var[j] = var;
		model->scale[j] = scl_scale_of(var, mean, acc->n);
	}
	return scl_check(model, err, errlen);
}

void
scl_transform(const scl_model *model, const double *x, double *out)
{
	for (int j = 0; j < model->n_features; j++)
		out[j] = (x[j] - model->mean[j]) / model->scale[j];
}

size_t
scl_encoded_size(int n_features)
{
	return SCL_HEADER_BYTES + 3 * (size_t) n_features * sizeof(double);
}

void
scl_encode(const scl_model *model, uint8_t *buf)
{
	int			k = model->n_features;
	uint8_t    *p = buf + SCL_HEADER_BYTES;

	memcpy(buf, SCL_MAGIC, 4);
	le_put_u16(buf + 4, SCL_VERSION);
	le_put_u16(buf + 6, 0);
	le_put_u32(buf + 8, (uint32_t) k);
	le_put_u32(buf + 12, 0);
	le_put_u64(buf + 16, (uint64_t) model->n_samples);
	for (int j = 0; j < k; j++, p += 8)
		le_put_f64(p, model->mean[j]);
	for (int j = 0; j < k; j++, p += 8)
		le_put_f64(p, model->var[j]);
	for (int j = 0; j < k; j++, p += 8)
		le_put_f64(p, model->scale[j]);
}

int
scl_peek_features(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint32_t	k;

	if (len < SCL_HEADER_BYTES)
		return decode_fail(err, errlen, "scaler value is %zu bytes, shorter than its %d-byte header", len, SCL_HEADER_BYTES);
	if (memcmp(buf, SCL_MAGIC, 4) != 0)
		return decode_fail(err, errlen, "bad magic: not a calo_recon scaler");
	if (le_get_u16(buf + 4) != SCL_VERSION)
		return decode_fail(err, errlen, "unsupported scaler format version %u (this build reads %d)", le_get_u16(buf + 4), SCL_VERSION);
	if (le_get_u16(buf + 6) != 0 || le_get_u32(buf + 12) != 0)
		return decode_fail(err, errlen, "unknown flags or nonzero reserved field");
	k = le_get_u32(buf + 8);
	if (k < 1 || k > SCL_MAX_FEATURES)
		return decode_fail(err, errlen, "n_features %u is outside 1..%d", k, SCL_MAX_FEATURES);
	if (len != scl_encoded_size((int) k))
		return decode_fail(err, errlen, "length %zu does not match %u features (%zu bytes expected)", len, k, scl_encoded_size((int) k));
	return (int) k;
}

int
scl_check(const scl_model *model, char *err, size_t errlen)
{
	if (model->n_features < 1 || model->n_features > SCL_MAX_FEATURES)
		return decode_fail(err, errlen, "n_features %d is outside 1..%d", model->n_features, SCL_MAX_FEATURES);
	if (model->n_samples < 1)
		return decode_fail(err, errlen, "n_samples %lld is not positive", (long long) model->n_samples);
	for (int j = 0; j < model->n_features; j++)
	{
		if (!isfinite(model->mean[j]))
			return decode_fail(err, errlen, "mean of feature %d is not finite", j + 1);
		if (!isfinite(model->var[j]) || model->var[j] < 0.0)
			return decode_fail(err, errlen, "variance of feature %d is negative or not finite", j + 1);
		/*
		 * a subnormal scale turns ordinary features into infinities; no
		 * fit makes one (the square root of any positive double is normal)
		 */
		if (!isnormal(model->scale[j]) || !(model->scale[j] > 0.0))
			return decode_fail(err, errlen, "scale of feature %d is not a positive normal number", j + 1);
	}
	return 0;
}

int
scl_decode(const uint8_t *buf, size_t len, scl_model *model, char *err, size_t errlen)
{
	int			k = scl_peek_features(buf, len, err, errlen);
	const uint8_t *p = buf + SCL_HEADER_BYTES;
	uint64_t	n;

	if (k < 0)
		return -1;
	n = le_get_u64(buf + 16);
	if (n > (uint64_t) INT64_MAX)
		return decode_fail(err, errlen, "n_samples is out of range");
	model->n_samples = (int64_t) n;
	model->n_features = k;
	for (int j = 0; j < k; j++, p += 8)
		model->mean[j] = le_get_f64(p);
	for (int j = 0; j < k; j++, p += 8)
		model->var[j] = le_get_f64(p);
	for (int j = 0; j < k; j++, p += 8)
		model->scale[j] = le_get_f64(p);
	return scl_check(model, err, errlen);
}

size_t
scl_state_encoded_size(int n_features)
{
	return SCL_STATE_HEADER_BYTES + (size_t) n_features * SCL_DIGITS * sizeof(uint32_t);
}

void
scl_state_encode(const scl_acc *acc, uint8_t *buf)
{
	uint8_t    *p = buf + SCL_STATE_HEADER_BYTES;
	int64_t		d[SCL_SQUARES_DIGITS];

	memcpy(buf, SCL_STATE_MAGIC, 4);
	le_put_u16(buf + 4, SCL_STATE_VERSION);
	le_put_u16(buf + 6, 0);
	le_put_u32(buf + 8, (uint32_t) acc->n_features);
	le_put_u32(buf + 12, 0);
	le_put_u64(buf + 16, (uint64_t) acc->n);
	for (int j = 0; j < acc->n_features; j++)
		for (int part = 0; part < 2; part++)
		{
			int			len = part == 0 ? SCL_SUM_DIGITS : SCL_SQUARES_DIGITS;

			memcpy(d, acc->digits + (size_t) j * SCL_DIGITS + (part ? SCL_SUM_DIGITS : 0),
				   (size_t) len * sizeof(int64_t));
			normalize(d, len);
			for (int i = 0; i < len; i++, p += 4)
				le_put_u32(p, (uint32_t) d[i]);
		}
}

int
scl_state_peek_features(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint32_t	k;

	if (len < SCL_STATE_HEADER_BYTES)
		return decode_fail(err, errlen, "scaler state is %zu bytes, shorter than its %d-byte header", len, SCL_STATE_HEADER_BYTES);
	if (memcmp(buf, SCL_STATE_MAGIC, 4) != 0)
		return decode_fail(err, errlen, "bad magic: not a calo_recon scaler state");
	if (le_get_u16(buf + 4) != SCL_STATE_VERSION)
		return decode_fail(err, errlen, "unsupported scaler state format version %u (this build reads %d)",
						   le_get_u16(buf + 4), SCL_STATE_VERSION);
	if (le_get_u16(buf + 6) != 0 || le_get_u32(buf + 12) != 0)
		return decode_fail(err, errlen, "unknown flags or nonzero reserved field");
	k = le_get_u32(buf + 8);
	if (k < 1 || k > SCL_MAX_FEATURES)
		return decode_fail(err, errlen, "n_features %u is outside 1..%d", k, SCL_MAX_FEATURES);
	if (len != scl_state_encoded_size((int) k))
		return decode_fail(err, errlen, "length %zu does not match %u features (%zu bytes expected)", len, k,
						   scl_state_encoded_size((int) k));
	return (int) k;
}

int
scl_state_decode(const uint8_t *buf, size_t len, scl_acc *acc, char *err, size_t errlen)
{
	int			k = scl_state_peek_features(buf, len, err, errlen);
	const uint8_t *p = buf + SCL_STATE_HEADER_BYTES;
	uint64_t	n;

	if (k < 0)
		return -1;
	n = le_get_u64(buf + 16);
	if (n > (uint64_t) INT64_MAX)
		return decode_fail(err, errlen, "n is out of range");
	acc->n = (int64_t) n;
	acc->n_features = k;
	acc->pending = 0;
	for (int j = 0; j < k; j++)
	{
		int64_t    *d = acc->digits + (size_t) j * SCL_DIGITS;
		double		mean,
					var;

		for (int i = 0; i < SCL_DIGITS; i++, p += 4)
		{
			uint32_t	v = le_get_u32(p);
			int			last = i == SCL_SUM_DIGITS - 1 || i == SCL_DIGITS - 1;

			/* the last digit of each sum carries its sign */
			d[i] = last ? (int64_t) (int32_t) v : (int64_t) v;
			if (n == 0 && v != 0)
				return decode_fail(err, errlen, "an empty state has a nonzero sum");
		}
		if (n > 0 && exact_moments(acc, j, &mean, &var) != 0)
			return decode_fail(err, errlen, "the sums of feature %d are inconsistent (no rows have them)", j + 1);
	}
	return 0;
}

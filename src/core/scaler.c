/*
 * scaler.c: StandardScaler core: Welford updates, Chan merge, sklearn's
 * constant-feature rule, and the validated binary form.
 */
#include "scaler.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decode_error.h"
#include "le_bytes.h"

size_t
scl_acc_size(int n_features)
{
	return sizeof(scl_acc) + 3 * (size_t) n_features * sizeof(double);
}

void
scl_acc_init(scl_acc *acc, int n_features)
{
	acc->n = 0;
	acc->n_features = n_features;
	acc->pad = 0;
	memset(acc->data, 0, 3 * (size_t) n_features * sizeof(double));
}

/*
 * data[] holds shift[k], mean[k], m2[k]: the means are kept relative to the
 * first row seen, so a feature with a large offset (1e9 + noise) keeps the
 * precision of its noise, also through the merge of partial fits.
 */
void
scl_acc_add(scl_acc *acc, const double *x)
{
	int			k = acc->n_features;
	double	   *shift = acc->data;
	double	   *mean = acc->data + k;
	double	   *m2 = acc->data + 2 * k;
	double		n;

	if (acc->n == 0)
		memcpy(shift, x, (size_t) k * sizeof(double));
	acc->n++;
	n = (double) acc->n;
	for (int j = 0; j < k; j++)
	{
		double		y = x[j] - shift[j];
		double		delta = y - mean[j];

		mean[j] += delta / n;
		m2[j] += delta * (y - mean[j]);
	}
}

void
scl_acc_merge(scl_acc *a, const scl_acc *b)
{
	int			k = a->n_features;
	double		na = (double) a->n,
				nb = (double) b->n,
				n;

	if (b->n == 0)
		return;
	if (a->n == 0)
	{
		memcpy(a->data, b->data, 3 * (size_t) k * sizeof(double));
		a->n = b->n;
		return;
	}
	n = na + nb;
	for (int j = 0; j < k; j++)
	{
		double		delta = ((b->data[j] - a->data[j]) + b->data[k + j]) - a->data[k + j];

		a->data[k + j] += delta * (nb / n);
		a->data[2 * k + j] += b->data[2 * k + j] + delta * delta * (na * nb / n);
	}
	a->n += b->n;
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
		double		var = acc->data[2 * k + j] / (double) acc->n;
		double		mean = acc->data[j] + acc->data[k + j];

		if (var < 0.0)
			var = 0.0;
		/* an overflow anywhere in the updates ends here as +-inf or NaN */
		if (!isfinite(mean) || !isfinite(var))
			return decode_fail(err, errlen, "the %s of feature %d overflows double precision",
							   isfinite(mean) ? "variance" : "mean", j + 1);
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
		if (!isfinite(model->scale[j]) || !(model->scale[j] > 0.0))
			return decode_fail(err, errlen, "scale of feature %d is not a positive finite number", j + 1);
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
	return SCL_STATE_HEADER_BYTES + 3 * (size_t) n_features * sizeof(double);
}

void
scl_state_encode(const scl_acc *acc, uint8_t *buf)
{
	uint8_t    *p = buf + SCL_STATE_HEADER_BYTES;

	memcpy(buf, SCL_STATE_MAGIC, 4);
	le_put_u16(buf + 4, SCL_STATE_VERSION);
	le_put_u16(buf + 6, 0);
	le_put_u32(buf + 8, (uint32_t) acc->n_features);
	le_put_u32(buf + 12, 0);
	le_put_u64(buf + 16, (uint64_t) acc->n);
	for (int j = 0; j < 3 * acc->n_features; j++, p += 8)
		le_put_f64(p, acc->data[j]);
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
	acc->pad = 0;
	for (int j = 0; j < 3 * k; j++, p += 8)
	{
		acc->data[j] = le_get_f64(p);
		if (!isfinite(acc->data[j]))
			return decode_fail(err, errlen, "%s of feature %d is not finite",
							   j < k ? "shift" : j < 2 * k ? "mean" : "m2", j % k + 1);
		if (n == 0 && acc->data[j] != 0.0)
			return decode_fail(err, errlen, "an empty state has a nonzero value");
		if (j >= 2 * k && acc->data[j] < 0.0)
			return decode_fail(err, errlen, "m2 of feature %d is negative", j % k + 1);
	}
	return 0;
}

/*
 * fuzz_iforest_decode.c: the isolation forest decoder on untrusted bytes.
 *
 * The first input byte picks a mode:
 *   even: the rest is decoded as is (checksum and all);
 *   odd:  the rest gets a freshly computed checksum first, so mutations
 *         reach the structural checks behind it.
 * Whatever decodes must score without fault, above 2^-3 (no tree is deeper
 * than the bound), and encode back to the very same bytes (the form is
 * canonical).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iforest.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *buf;
	size_t		len,
				need;
	char		err[256];
	void	   *mem;
	ifo_forest *f;

	if (size < 1)
		return 0;
	len = size - 1;
	buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	if ((data[0] & 1) && len >= IFO_HEADER_BYTES)
	{
		ifo_writer	w = {buf, 0, 0, 0, 0};

		ifo_write_seal(&w, len);
	}
	need = ifo_decode_plan(buf, len, err, sizeof err);
	if (need == 0)
	{
		free(buf);
		return 0;
	}
	mem = malloc(need);
	f = ifo_decode(buf, len, mem, need, err, sizeof err);
	if (f)
	{
		double	   *x = calloc(f->n_features, sizeof(double));
		double	   *scratch = calloc(3 * (size_t) f->n_features, sizeof(double));
		size_t		elen = ifo_encoded_size(f);
		uint8_t    *again = malloc(elen);
		double		s;

		for (uint32_t j = 0; j < f->n_features; j++)
			x[j] = (double) (int) (j % 7) - 3.0;
		s = ifo_score(f, x);
		/* the depth bound keeps the exponent below 3 (iforest.h) */
		if (!(s > 0.125 && s <= 1.0))
			abort();
		/* scoring in slices of trees, as the glue does, gives the same sum */
		{
			double		sum = 0.0;

			for (uint32_t t = 0; t < f->n_trees; t += 3)
				sum = ifo_path_sum_trees(f, x, t, t + 3, sum);
			if (ifo_score_of_path_sum(f, sum) != s)
				abort();
		}
		{
			int			feature = ifo_explain(f, x, scratch);
			double	   *lo = calloc(f->n_features, sizeof(double));
			double	   *hi = calloc(f->n_features, sizeof(double));

			ifo_split_ranges(f, lo, hi);
			if (ifo_explain_ranged(f, x, lo, hi, scratch) != feature)
				abort();
			free(lo);
			free(hi);
		}
		ifo_encode(f, again);
		if (elen != len || memcmp(again, buf, len) != 0)
			abort();
		free(again);
		free(scratch);
		free(x);
	}
	free(mem);
	free(buf);
	return 0;
}

/*
 * fuzz_fit_state_decode.c: the decoders of the fitting aggregates' partial
 * states (calo_recon.iforest_sample, bottomk.c; calo_recon.scaler_state,
 * scaler.c) on untrusted bytes: what Citus's coordinator and the binary
 * protocol hand them.
 *
 * The first input byte picks the decoder (even: sample, odd: scaler state).
 * Whatever decodes must encode back to the very same bytes (the forms are
 * canonical); a small sample must be its own sketch (merged into an empty
 * one and compacted, the same bytes) and grow a forest; a scaler state must
 * finish without fault.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bottomk.h"
#include "iforest.h"
#include "scaler.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
sample_arrays(bk_sample *s, uint64_t room)
{
	s->room = room ? room : 1;
	s->prio = malloc(s->room * sizeof(uint64_t));
	s->mult = malloc(s->room * sizeof(uint64_t));
	s->rows = malloc(s->room * s->n_features * sizeof(double));
}

static void
sample_free(bk_sample *s)
{
	free(s->prio);
	free(s->mult);
	free(s->rows);
}

static void
check_sample(const uint8_t *buf, size_t len)
{
	bk_sample	s,
				again;
	char		err[256];
	uint8_t    *out;

	if (bk_decode_header(buf, len, &s, err, sizeof err) != 0)
		return;
	sample_arrays(&s, s.count);
	if (bk_decode(buf, len, &s, err, sizeof err) != 0)
	{
		sample_free(&s);
		return;
	}
	out = malloc(len);
	bk_encode(&s, out);
	if (bk_encoded_size(&s) != len || memcmp(out, buf, len) != 0)
		abort();
	if (s.capacity <= 4096)
	{
		void	   *scratch;
		ifo_params	p;
		rng_state	rng;
		size_t		need;
		void	   *work;

		bk_init(&again, s.seed, s.n_features, s.n_trees, s.sample_size, s.extension_level);
		sample_arrays(&again, bk_max_room(&again));
		scratch = malloc(bk_scratch_bytes(&again));
		bk_merge(&again, &s, scratch);
		bk_compact(&again, scratch);
		bk_encode(&again, out);
		if (again.seen != s.seen || bk_encoded_size(&again) != len || memcmp(out, buf, len) != 0)
			abort();
		if (s.count > 0)
		{
			bk_build_setup(&s, &p, &rng);
			need = ifo_build_workspace(s.count, s.n_features, &p);
			work = malloc(need);
			if (ifo_build(s.rows, s.mult, s.count, s.seen, s.n_features, &p, &rng, work, need) == NULL)
				abort();
			free(work);
		}
		free(scratch);
		sample_free(&again);
	}
	free(out);
	sample_free(&s);
}

static void
check_scaler_state(const uint8_t *buf, size_t len)
{
	char		err[256];
	int			k = scl_state_peek_features(buf, len, err, sizeof err);
	scl_acc    *acc;
	uint8_t    *out;

	if (k < 0)
		return;
	acc = malloc(scl_acc_size(k));
	if (scl_state_decode(buf, len, acc, err, sizeof err) == 0)
	{
		out = malloc(len);
		scl_state_encode(acc, out);
		if (memcmp(out, buf, len) != 0)
			abort();
		if (acc->n > 0)
		{
			double	   *mean = malloc(k * sizeof(double)),
					   *var = malloc(k * sizeof(double)),
					   *scale = malloc(k * sizeof(double));
			scl_model	m = {0, k, mean, var, scale};

			(void) scl_acc_finish(acc, &m, err, sizeof err);
			free(mean);
			free(var);
			free(scale);
		}
		free(out);
	}
	free(acc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_scaler_state(data + 1, size - 1);
	else
		check_sample(data + 1, size - 1);
	return 0;
}

/*
 * core_bench: the plain C log parser (lp_parse() of src/core/logparse.h)
 * alone, without PostgreSQL: reads the given plain log files into memory,
 * then times lp_parse() over all of them REPEAT times and prints the best run.
 * bench/parse/core_compare.sh times it before and after a change.
 *
 *   cc -O2 -I src/core -o core_bench bench/parse/core_bench.c <every src/core .c file> -lz -lm
 *   core_bench REPEAT FILE...
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "logparse.h"

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	int			repeat = argc > 1 ? atoi(argv[1]) : 0;
	int			nfiles = argc - 2;
	char	  **texts = calloc((size_t) (nfiles > 0 ? nfiles : 1), sizeof(char *));
	size_t	   *lens = calloc((size_t) (nfiles > 0 ? nfiles : 1), sizeof(size_t));
	size_t		bytes = 0, events = 0, txns = 0;
	double		best = 0;

	if (repeat < 1 || nfiles < 1 || !texts || !lens)
	{
		fputs("usage: core_bench REPEAT FILE...\n", stderr);
		return 2;
	}
	for (int i = 0; i < nfiles; i++)
	{
		FILE	   *f = fopen(argv[i + 2], "rb");
		long		n;

		if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
			!(texts[i] = malloc((size_t) n + 1)) || fread(texts[i], 1, (size_t) n, f) != (size_t) n)
		{
			fprintf(stderr, "core_bench: cannot read %s\n", argv[i + 2]);
			return 1;
		}
		fclose(f);
		lens[i] = (size_t) n;
		bytes += (size_t) n;
	}
	for (int r = 0; r < repeat; r++)
	{
		double		t0 = now();

		events = txns = 0;
		for (int i = 0; i < nfiles; i++)
		{
			lp_result	res = {0};

			if (lp_parse(texts[i], lens[i], NULL, &res) != LP_OK)
			{
				fputs("core_bench: lp_parse failed\n", stderr);
				return 1;
			}
			events += res.n_events;
			for (size_t e = 0; e < res.n_events; e++)
				txns += res.events[e].kind == LP_TRANSACTION;
			lp_free(&res);
		}
		double		t = now() - t0;

		if (r == 0 || t < best)
			best = t;
	}
	printf("{\"bytes\": %zu, \"events\": %zu, \"transactions\": %zu, \"seconds\": %.6f}\n",
		   bytes, events, txns, best);
	return 0;
}

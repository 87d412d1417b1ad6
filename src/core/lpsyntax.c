/*
 * lpsyntax.c: the duplicate member name check the log parser's two grammars
 * share (plain C core); see lpsyntax.h.
 */
#include "lpsyntax.h"

#include <stdlib.h>
#include <string.h>

typedef struct lpsyntax_key_view
{
	const char *p;
	size_t		len;
	size_t		index;
} lpsyntax_key_view;

static int
lpsyntax_key_view_cmp(const void *a, const void *b)
{
	const lpsyntax_key_view *x = a,
			   *y = b;
	int			c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(x->p, y->p, x->len);
	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* pairwise for small objects, by sorting for large ones (a hostile object has many keys) */
long
lpsyntax_duplicate_key(const char *base, const lpsyntax_key *keys, size_t n)
{
	lpsyntax_key_view *views;
	long		dup = -1;

	if (n <= 16)
	{
		for (size_t j = 1; j < n; j++)
			for (size_t i = 0; i < j; i++)
				if (keys[i].len == keys[j].len && memcmp(base + keys[i].off, base + keys[j].off, keys[i].len) == 0)
					return (long) j;
		return -1;
	}
	views = malloc(n * sizeof(lpsyntax_key_view));
	if (views == NULL)
		return -2;
	for (size_t i = 0; i < n; i++)
	{
		views[i].p = base + keys[i].off;
		views[i].len = keys[i].len;
		views[i].index = i;
	}
	qsort(views, n, sizeof(lpsyntax_key_view), lpsyntax_key_view_cmp);
	for (size_t i = 1; i < n; i++)
		if (views[i].len == views[i - 1].len && memcmp(views[i].p, views[i - 1].p, views[i].len) == 0 &&
			(dup < 0 || views[i].index < (size_t) dup))
			dup = (long) views[i].index;
	free(views);
	return dup;
}

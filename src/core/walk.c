/*
 * walk.c: the per-user walk (chain order, findings in report order). See walk.h.
 */
#include "walk.h"

#include <stdlib.h>
#include <string.h>

int
walk_txn_id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t		common = alen < blen ? alen : blen;
	int			c = common > 0 ? memcmp(a, b, common) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

int
walk_chain_cmp(const walk_row *a, const walk_row *b)
{
	if (a->logged_at != b->logged_at)
		return a->logged_at < b->logged_at ? -1 : 1;
	return walk_txn_id_cmp(a->txn_id, a->txn_id_len, b->txn_id, b->txn_id_len);
}

void
walk_chain_key(int64_t logged_at, const char *txn_id, size_t txn_id_len,
			   unsigned char *out)
{
	/* flipping the sign bit makes the unsigned big-endian order the signed order */
	uint64_t	u = (uint64_t) logged_at ^ ((uint64_t) 1 << 63);
	int			i;

	for (i = 0; i < WALK_KEY_PREFIX; i++)
		out[i] = (unsigned char) (u >> (8 * (WALK_KEY_PREFIX - 1 - i)));
	if (txn_id_len > 0)
		memcpy(out + WALK_KEY_PREFIX, txn_id, txn_id_len);
}

/* logged_at, then the caller's row number: needs no txn_id */
static int
walk_time_cmp(const void *pa, const void *pb)
{
	const walk_row *a = pa;
	const walk_row *b = pb;

	if (a->logged_at != b->logged_at)
		return a->logged_at < b->logged_at ? -1 : 1;
	return a->ref < b->ref ? -1 : (a->ref > b->ref ? 1 : 0);
}

static int
walk_tie_cmp(const void *pa, const void *pb)
{
	const walk_row *a = pa;
	const walk_row *b = pb;
	int			c = walk_chain_cmp(a, b);

	if (c != 0)
		return c;
	return a->ref < b->ref ? -1 : (a->ref > b->ref ? 1 : 0);
}

void
walk_order(walk_row *rows, size_t n, walk_txn_id_fn fetch, void *ctx)
{
	size_t		i;
	size_t		lo;
	bool		increasing = true;

	for (i = 1; i < n && increasing; i++)
		increasing = rows[i - 1].logged_at < rows[i].logged_at;
	if (increasing)
		return;					/* the usual case: no tie, already in order */
	qsort(rows, n, sizeof(walk_row), walk_time_cmp);
	for (lo = 0; lo < n; lo = i)
	{
		for (i = lo + 1; i < n && rows[i].logged_at == rows[lo].logged_at; i++)
			;
		if (i - lo < 2)
			continue;
		if (fetch != NULL)
		{
			size_t		k;

			for (k = lo; k < i; k++)
				if (rows[k].txn_id == NULL)
					fetch(ctx, &rows[k]);
		}
		qsort(rows + lo, i - lo, sizeof(walk_row), walk_tie_cmp);
	}
}

bool
walk_row_is_overdraft(const walk_row *row)
{
	return bal_is_overdraft(row->balances_valid ? bal_cmp(row->new_balance, 0)
							: row->new_balance_sign);
}

bool
walk_row_is_credit(const walk_row *row)
{
	return bal_is_credit(row->type, row->balances_valid
						 ? bal_cmp(row->new_balance, row->old_balance)
						 : row->new_vs_old_sign);
}

void
walk_seed(bal_walk *state, bool valid, bal_dec prev_new_balance)
{
	bal_walk_init(state);
	state->has_prev = true;
	state->prev_valid = valid;
	state->prev_new_balance = valid ? prev_new_balance : 0;
}

static void
walk_emit(bal_walk *state, const walk_row *row, const bal_check *check,
		  walk_emit_fn emit, void *ctx)
{
	bool		first = bal_walk_first_break(state, check->finding);

	emit(ctx, row, check, first);
}

void
walk_step(bal_walk *state, const walk_row *row, walk_emit_fn emit, void *ctx)
{
	bal_check	c;

	c = bal_walk_chain(state, row->balances_valid, row->old_balance, row->new_balance,
					   row->tolerance);
	if (c.finding != BAL_NONE)
		walk_emit(state, row, &c, emit, ctx);

	if (row->balances_valid && row->amounts_valid)
		c = bal_check_arithmetic(row->type, row->amount, row->vat, row->old_balance,
								 row->new_balance, row->tolerance);
	else
	{
		memset(&c, 0, sizeof(c));
		c.finding = BAL_OUT_OF_RANGE;
	}
	if (c.finding != BAL_NONE)
		walk_emit(state, row, &c, emit, ctx);

	if (walk_row_is_overdraft(row))
	{
		memset(&c, 0, sizeof(c));
		c.finding = BAL_OVERDRAFT;
		c.actual = row->balances_valid ? row->new_balance : 0;
		walk_emit(state, row, &c, emit, ctx);
	}
}

void
walk_user(walk_row *rows, size_t n, walk_txn_id_fn fetch, walk_emit_fn emit, void *ctx)
{
	bal_walk	state;
	size_t		i;

	walk_order(rows, n, fetch, ctx);
	bal_walk_init(&state);
	for (i = 0; i < n; i++)
		walk_step(&state, &rows[i], emit, ctx);
}

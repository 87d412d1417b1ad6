/*
 * walk.h: the per-user walk of the reconciliation, the one
 * home of the chain order and of the order in which a transaction's findings
 * are reported. Plain C, no PostgreSQL headers.
 *
 * Chain order: logged_at, then txn_id compared bytewise (shorter first on a
 * common prefix), whatever the database collation. reconcile() and the
 * insert-time check of the alert trigger both walk with walk_user(); SQL
 * orders by walk_chain_key() (calo_recon.chain_key), which sorts as
 * walk_chain_cmp() does.
 */
#ifndef CALO_WALK_H
#define CALO_WALK_H

#include "balance.h"

/*
 * One transaction. bal_dec wants 16-byte alignment: arrays of walk_row must
 * come from an allocator that gives it (malloc does; palloc does not).
 */
typedef struct walk_row
{
	bal_dec		amount;
	bal_dec		vat;
	bal_dec		old_balance;
	bal_dec		new_balance;
	bal_dec		tolerance;		/* bal_tolerance() of the row's currency */
	int64_t		logged_at;		/* microseconds, PostgreSQL's timestamptz */
	const char *txn_id;			/* bytes; NULL until walk_txn_id_fn fills it */
	size_t		txn_id_len;
	uint32_t	ref;			/* the caller's row number */
	uint32_t	currency;		/* the caller's number of the row's currency */
	bal_type	type;
	bool		balances_valid; /* old_balance and new_balance representable */
	bool		amounts_valid;	/* amount and vat representable */
	int8_t		new_balance_sign;	/* sign of new_balance; read when !balances_valid */
	int8_t		new_vs_old_sign;	/* sign of new_balance - old_balance; read when !balances_valid */
} walk_row;

/* The overdraft rule (bal_is_overdraft) of a row. */
bool		walk_row_is_overdraft(const walk_row *row);

/* The direction rule (bal_is_credit) of a row. */
bool		walk_row_is_credit(const walk_row *row);

/* The txn_id part of the chain order: bytewise, shorter first on a common
 * prefix (<0, 0 or >0). */
int			walk_txn_id_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* The chain order of two rows whose txn_id is set: <0, 0 or >0. */
int			walk_chain_cmp(const walk_row *a, const walk_row *b);

/* Bytes of the chain key of a row: WALK_KEY_PREFIX + txn_id_len. */
#define WALK_KEY_PREFIX 8

/*
 * A byte string whose bytewise order (shorter first on a common prefix, as
 * PostgreSQL compares bytea) is the chain order: logged_at big-endian with
 * the sign bit flipped, then the txn_id bytes. out holds
 * WALK_KEY_PREFIX + txn_id_len bytes.
 */
void		walk_chain_key(int64_t logged_at, const char *txn_id, size_t txn_id_len,
						   unsigned char *out);

/* Sets row->txn_id (and txn_id_len) of a row that has none yet. */
typedef void (*walk_txn_id_fn) (void *ctx, walk_row *row);

/*
 * Puts one user's rows in chain order, in place. txn_id is asked for only
 * of rows that share a logged_at with another row (fetch may be NULL when
 * every txn_id is set). The comparisons call nothing outside this file, so
 * fetch may leave by longjmp.
 */
void		walk_order(walk_row *rows, size_t n, walk_txn_id_fn fetch, void *ctx);

/* A finding of a row: check->finding is never BAL_NONE. first_break is true
 * for the user's first break in chain order. */
typedef void (*walk_emit_fn) (void *ctx, const walk_row *row, const bal_check *check,
							  bool first_break);

/* The predecessor of the next row walk_step() sees (check_transaction). */
void		walk_seed(bal_walk *state, bool valid, bal_dec prev_new_balance);

/*
 * Checks the next row in chain order and emits its findings in report
 * order: chain or chain_drift, then arithmetic, drift or out_of_range, then
 * overdraft.
 */
void		walk_step(bal_walk *state, const walk_row *row, walk_emit_fn emit, void *ctx);

/* walk_order, then walk_step over the rows from a fresh state. */
void		walk_user(walk_row *rows, size_t n, walk_txn_id_fn fetch,
					  walk_emit_fn emit, void *ctx);

#endif

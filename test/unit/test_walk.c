/*
 * Unit tests of src/core/walk.c: chain order (ties on logged_at broken bytewise,
 * never by a locale), the chain key against the comparator, and the walk's
 * findings (legacy rows, tolerance edges, overdraft, out_of_range).
 */
#include "walk.h"

#include <stdlib.h>

#include "unit.h"

static bal_dec
D(const char *s)
{
	bal_dec		v = 0;

	if (bal_parse(s, strlen(s), &v) != BAL_OK)
	{
		fprintf(stderr, "bad literal %s\n", s);
		abort();
	}
	return v;
}

static walk_row
R(uint32_t ref, int64_t at, const char *txn_id, bal_type type, const char *amount,
  const char *vat, const char *old_balance, const char *new_balance, int minor_unit)
{
	walk_row	r;

	memset(&r, 0, sizeof(r));
	r.ref = ref;
	r.logged_at = at;
	r.txn_id = txn_id;
	r.txn_id_len = txn_id ? strlen(txn_id) : 0;
	r.type = type;
	r.amount = D(amount);
	r.vat = D(vat);
	r.old_balance = D(old_balance);
	r.new_balance = D(new_balance);
	r.tolerance = bal_tolerance(minor_unit);
	r.balances_valid = r.amounts_valid = true;
	r.new_balance_sign = (int8_t) bal_cmp(r.new_balance, 0);
	return r;
}

/* What the walk emitted, in order. */
typedef struct seen
{
	int			n;
	uint32_t	ref[32];
	bal_finding finding[32];
	bool		first[32];
	bal_dec		difference[32];
} seen;

static void
record(void *ctx, const walk_row *row, const bal_check *check, bool first_break)
{
	seen	   *s = ctx;

	s->ref[s->n] = row->ref;
	s->finding[s->n] = check->finding;
	s->first[s->n] = first_break;
	s->difference[s->n] = check->difference;
	s->n++;
}

/* txn_ids handed out on demand, as reconcile() fetches them by tid */
static const char *lazy_ids[8];
static int	lazy_fetches;

static void
lazy_fetch(void *ctx, walk_row *row)
{
	(void) ctx;
	row->txn_id = lazy_ids[row->ref];
	row->txn_id_len = strlen(lazy_ids[row->ref]);
	lazy_fetches++;
}

static void
test_order(void)
{
	/* same instant: bytewise 'B2' < 'a1' < 'a1x' and 'p-2' < 'p.1' (a
	 * locale such as en-US sorts both pairs the other way round) */
	walk_row	rows[6];
	static const char *const want[6] = {"X0", "B2", "a1", "a1x", "p-2", "p.1"};
	int			i;

	rows[0] = R(0, 200, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[1] = R(1, 100, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[2] = R(2, 100, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[3] = R(3, 50, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[4] = R(4, 200, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[5] = R(5, 100, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	lazy_ids[0] = "p.1";
	lazy_ids[1] = "a1x";
	lazy_ids[2] = "a1";
	lazy_ids[3] = "X0";
	lazy_ids[4] = "p-2";
	lazy_ids[5] = "B2";
	lazy_fetches = 0;
	walk_order(rows, 6, lazy_fetch, NULL);
	for (i = 0; i < 6; i++)
		CHECK_STR(rows[i].txn_id ? rows[i].txn_id : lazy_ids[rows[i].ref], want[i]);
	CHECK(lazy_fetches == 5);	/* X0 is alone at its instant: never fetched */

	/* rows already in time order without ties: nothing fetched, nothing moved */
	rows[0] = R(7, 1, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[1] = R(3, 2, NULL, BAL_DEBIT, "1", "0", "1", "0", 2);
	lazy_fetches = 0;
	walk_order(rows, 2, lazy_fetch, NULL);
	CHECK(lazy_fetches == 0 && rows[0].ref == 7 && rows[1].ref == 3);

	/* negative times (before 2000-01-01) sort before positive ones */
	rows[0] = R(0, 5, "a", BAL_DEBIT, "1", "0", "1", "0", 2);
	rows[1] = R(1, -5, "b", BAL_DEBIT, "1", "0", "1", "0", 2);
	walk_order(rows, 2, NULL, NULL);
	CHECK(rows[0].ref == 1);
}

static int
sign(int v)
{
	return v < 0 ? -1 : (v > 0 ? 1 : 0);
}

/* bytea order: memcmp of the common prefix, then the shorter first */
static int
key_cmp(const walk_row *a, const walk_row *b)
{
	unsigned char ka[64];
	unsigned char kb[64];
	size_t		la = WALK_KEY_PREFIX + a->txn_id_len;
	size_t		lb = WALK_KEY_PREFIX + b->txn_id_len;
	int			c;

	walk_chain_key(a->logged_at, a->txn_id, a->txn_id_len, ka);
	walk_chain_key(b->logged_at, b->txn_id, b->txn_id_len, kb);
	c = memcmp(ka, kb, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la < lb ? -1 : (la > lb ? 1 : 0);
}

static void
test_key_matches_cmp(void)
{
	static const int64_t times[] = {INT64_MIN, -86400000000LL, -1, 0, 1, 255, 256,
	760000000000000LL, INT64_MAX};
	static const char *const ids[] = {"", "A", "B2", "a", "a1", "a1x", "p-2", "p.1",
	"\xc3\xa9", "z", "01HPQY77ZXYYK596NGYA1DQ91K"};
	size_t		nt = sizeof(times) / sizeof(times[0]);
	size_t		ni = sizeof(ids) / sizeof(ids[0]);
	size_t		i,
				j;
	int			mismatches = 0;

	for (i = 0; i < nt * ni; i++)
		for (j = 0; j < nt * ni; j++)
		{
			walk_row	a = R(0, times[i / ni], ids[i % ni], BAL_DEBIT, "0", "0", "0", "0", 2);
			walk_row	b = R(1, times[j / ni], ids[j % ni], BAL_DEBIT, "0", "0", "0", "0", 2);

			if (sign(walk_chain_cmp(&a, &b)) != sign(key_cmp(&a, &b)))
				mismatches++;
		}
	CHECK(mismatches == 0);
	/* the byte above 0x7f sorts after ASCII: unsigned comparison */
	{
		walk_row	a = R(0, 0, "z", BAL_DEBIT, "0", "0", "0", "0", 2);
		walk_row	b = R(1, 0, "\xc3\xa9", BAL_DEBIT, "0", "0", "0", "0", 2);

		CHECK(walk_chain_cmp(&a, &b) < 0);
	}
}

static void
test_walk_findings(void)
{
	walk_row	rows[8];
	seen		s;

	/* out of order on input; ties at 100 broken bytewise: B2 before a1 */
	memset(&s, 0, sizeof(s));
	rows[0] = R(0, 100, "a1", BAL_DEBIT, "3", "0", "7", "4", 2);
	rows[1] = R(1, 100, "B2", BAL_DEBIT, "3", "0", "10", "7", 2);
	rows[2] = R(2, 50, "X0", BAL_CREDIT, "10", "0", "0", "10", 2);
	walk_user(rows, 3, NULL, record, &s);
	CHECK(s.n == 0);

	/* legacy rows: the direction of new - old, no change is a credit */
	memset(&s, 0, sizeof(s));
	rows[0] = R(0, 1, "L1", BAL_LEGACY, "5", "0", "87.5", "82.5", 2);
	rows[1] = R(1, 2, "L2", BAL_LEGACY, "55", "5", "82.5", "132.5", 2);
	rows[2] = R(2, 3, "L3", BAL_LEGACY, "0", "0", "132.5", "132.5", 2);
	rows[3] = R(3, 4, "L4", BAL_LEGACY, "50", "5", "132.5", "87.5", 2);	/* -45 = net */
	rows[4] = R(4, 5, "L5", BAL_LEGACY, "10", "0", "87.5", "97.5", 2);	/* +10 */
	rows[5] = R(5, 6, "L6", BAL_LEGACY, "10", "0", "97.5", "77.5", 2);	/* -20, not -10 */
	walk_user(rows, 6, NULL, record, &s);
	CHECK(s.n == 1 && s.ref[0] == 5 && s.finding[0] == BAL_ARITHMETIC && s.first[0]);
	CHECK(s.n == 1 && s.difference[0] == D("-10"));
	CHECK(bal_is_credit(BAL_LEGACY, 0) && bal_is_credit(BAL_LEGACY, 1) && !bal_is_credit(BAL_LEGACY, -1));
	CHECK(bal_is_credit(BAL_CREDIT, -1) && !bal_is_credit(BAL_DEBIT, 1));

	/* tolerance edges (BHD 3 decimals: 0.0005): at it a break, below it drift */
	memset(&s, 0, sizeof(s));
	rows[0] = R(0, 1, "E1", BAL_DEBIT, "1", "0", "10", "9.0005", 3);	/* arithmetic 0.0005 */
	rows[1] = R(1, 2, "E2", BAL_DEBIT, "1", "0", "9.0005", "8.0009999", 3);	/* drift 0.0004999 */
	rows[2] = R(2, 3, "E3", BAL_DEBIT, "1", "0", "8.0014998", "7.0014998", 3);	/* chain 0.0004999: drift */
	rows[3] = R(3, 4, "E4", BAL_DEBIT, "1", "0", "7.0019998", "6.0019998", 3);	/* chain 0.0005: break */
	walk_user(rows, 4, NULL, record, &s);
	CHECK(s.n == 4);
	CHECK(s.finding[0] == BAL_ARITHMETIC && s.first[0] && s.difference[0] == D("0.0005"));
	CHECK(s.finding[1] == BAL_DRIFT && !s.first[1]);
	CHECK(s.finding[2] == BAL_CHAIN_DRIFT && s.ref[2] == 2);
	CHECK(s.finding[3] == BAL_CHAIN && s.ref[3] == 3 && !s.first[3]);

	/* one row with every kind: chain, arithmetic, overdraft, in that order */
	memset(&s, 0, sizeof(s));
	rows[0] = R(0, 1, "O1", BAL_DEBIT, "15", "0", "10", "-5", 2);
	rows[1] = R(1, 2, "O2", BAL_DEBIT, "5", "0", "-4", "-10", 2);
	rows[2] = R(2, 3, "O3", BAL_CREDIT, "10", "0", "-10", "0", 2);	/* zero: no overdraft */
	walk_user(rows, 3, NULL, record, &s);
	CHECK(s.n == 4);
	CHECK(s.finding[0] == BAL_OVERDRAFT && s.ref[0] == 0 && !s.first[0]);
	CHECK(s.finding[1] == BAL_CHAIN && s.first[1] && s.ref[1] == 1);
	CHECK(s.finding[2] == BAL_ARITHMETIC && !s.first[2]);
	CHECK(s.finding[3] == BAL_OVERDRAFT && s.ref[3] == 1);
	CHECK_STR(bal_finding_name(BAL_OVERDRAFT), "overdraft");
	CHECK(bal_finding_from_name("overdraft", 9) == BAL_OVERDRAFT);
	CHECK(bal_finding_from_name("chain", 5) == BAL_CHAIN);
	CHECK(bal_finding_from_name("chain_", 6) == BAL_NONE);
	CHECK(bal_finding_from_name("none", 4) == BAL_NONE);
	CHECK(bal_finding_from_name("conflict", 8) == BAL_NONE);
	CHECK(!bal_finding_is_break(BAL_OVERDRAFT));

	/* unrepresentable values: out_of_range, the sign still gives the overdraft,
	 * and the next row is not chained to it */
	memset(&s, 0, sizeof(s));
	rows[0] = R(0, 1, "H1", BAL_DEBIT, "1", "0", "5", "4", 2);
	rows[1] = R(1, 2, "H2", BAL_DEBIT, "1", "0", "0", "0", 2);
	rows[1].balances_valid = false;
	rows[1].new_balance_sign = -1;
	rows[2] = R(2, 3, "H3", BAL_DEBIT, "1", "0", "99", "98", 2);
	rows[3] = R(3, 4, "H4", BAL_DEBIT, "1", "0", "98", "97", 2);
	rows[3].amounts_valid = false;
	walk_user(rows, 4, NULL, record, &s);
	CHECK(s.n == 3);
	CHECK(s.finding[0] == BAL_OUT_OF_RANGE && s.ref[0] == 1 && s.first[0]);
	CHECK(s.finding[1] == BAL_OVERDRAFT && s.ref[1] == 1);
	CHECK(s.finding[2] == BAL_OUT_OF_RANGE && s.ref[2] == 3 && !s.first[2]);

	/* walk_seed: a known predecessor (check_transaction) */
	{
		bal_walk	state;

		memset(&s, 0, sizeof(s));
		rows[0] = R(0, 1, "S1", BAL_DEBIT, "1", "0", "9", "8", 2);
		walk_seed(&state, true, D("9.004"));
		walk_step(&state, &rows[0], record, &s);
		CHECK(s.n == 1 && s.finding[0] == BAL_CHAIN_DRIFT);
		memset(&s, 0, sizeof(s));
		walk_seed(&state, false, 0);
		walk_step(&state, &rows[0], record, &s);
		CHECK(s.n == 0);
	}
}

int
main(void)
{
	test_order();
	test_key_matches_cmp();
	test_walk_findings();
	return unit_summary("walk");
}

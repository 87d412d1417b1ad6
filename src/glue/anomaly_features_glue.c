/*
 * anomaly_features_glue.c: PostgreSQL glue of the anomaly features.
 *
 *   calo_recon.transaction_feature_names()          feat_names as text[]
 *   calo_recon.compute_transaction_features(text[]) the rows of the
 *                                     calo_recon.transaction_features view
 *
 * fbook_load() reads the transactions once (a sequential scan for all users,
 * the user index through SPI for a few), converts money to features (exact
 * decimals, numeric arithmetic only for values beyond the exact range),
 * groups rows per user with a counting sort, orders each user's rows with
 * walk_order() and hands them to feat_user(). The minor unit of each row's
 * currency comes from calo_recon.currencies (read once per call).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "anomaly_features.h"
#include "anomaly_features_glue.h"
#include "citus_glue.h"
#include "name_index_glue.h"
#include "recon_glue.h"
#include "walk.h"

PG_FUNCTION_INFO_V1(calo_recon_transaction_feature_names);
PG_FUNCTION_INFO_V1(calo_recon_compute_transaction_features);
PG_FUNCTION_INFO_V1(calo_recon_transaction_features_placement);

StaticAssertDecl(FEAT_TIME_NOBEGIN == DT_NOBEGIN && FEAT_TIME_NOEND == DT_NOEND,
				 "the features' infinite times are PostgreSQL's");

Datum
calo_recon_transaction_feature_names(PG_FUNCTION_ARGS)
{
	Datum		names[FEAT_COUNT];

	for (int i = 0; i < FEAT_COUNT; i++)
		names[i] = CStringGetTextDatum(feat_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, FEAT_COUNT, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ---------------------------------------------------------------------
 * Money: the numeric columns as features
 * --------------------------------------------------------------------- */

/* calo_recon.feature_value of a numeric: the slow path, exact for any value */
static double
fbook_money_numeric(Numeric x)
{
	if (numeric_is_nan(x) || numeric_is_inf(x))
		return feat_money(false, 0.0);
	return feat_money(true, DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
															   NumericGetDatum(x))));
}

/* A numeric column, decoded once: exact when it can be, else the Datum */
typedef struct FeatureMoney
{
	bool		exact;
	bal_dec		value;
	Datum		datum;
} FeatureMoney;

static void
fbook_decode(Datum d, FeatureMoney *m)
{
	m->exact = recon_decode_numeric(d, &m->value) == BAL_OK;
	m->datum = d;
}

static double
fbook_money(const FeatureMoney *m)
{
	if (m->exact)
		return feat_money(true, feat_dec_to_double(m->value));
	return fbook_money_numeric(DatumGetNumeric(m->datum));
}

/* feature of a - b: exact decimals when both are, else numeric arithmetic */
static double
fbook_money_difference(const FeatureMoney *a, const FeatureMoney *b)
{
	bal_dec		diff;

	if (a->exact && b->exact && !__builtin_sub_overflow(a->value, b->value, &diff))
		return feat_money(true, feat_dec_to_double(diff));
	return fbook_money_numeric(DatumGetNumeric(DirectFunctionCall2(numeric_sub, a->datum, b->datum)));
}

/* ---------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------- */
typedef struct FeatureLoad
{
	FeatureBook *book;
	int64		cap;
	int64		arena_len;
	int64		arena_cap;
	feat_row   *rows;
	/* users: numbered by the index, their names shared with the book */
	NameIndex	users;
	uint32		user_cap;
	bool		closed;			/* rows of users not in the table are skipped */
	/* calo_recon.currencies: code and minor unit */
	int			n_known;
	char	  **known_code;
	int		   *known_minor;
	int			currency_cap;
	int			last_currency;	/* rows come in runs of one currency */
	/* the table read: calo_recon.transactions, or its shard on a Citus worker */
	Oid			relid;
	const char *relname;		/* quoted qualified name */
} FeatureLoad;

static void
fbook_reserve(FeatureLoad *ld, int64 need)
{
	FeatureBook *b = ld->book;
	int64		cap;

	if (need <= ld->cap)
		return;
	cap = Max(need, ld->cap * 2);
	if (cap > (int64) PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many transactions for the anomaly features in one call")));
	b->txn_off = recon_grow(b->txn_off, sizeof(int64), cap + 1);
	b->user = recon_grow(b->user, sizeof(uint32), cap);
	b->logged_at = recon_grow(b->logged_at, sizeof(int64), cap);
	ld->rows = recon_grow(ld->rows, sizeof(feat_row), cap);
	b->currency = recon_grow(b->currency, sizeof(uint16), cap);
	ld->cap = cap;
}

/* The index of a user, added on first sight (or, when ld->closed, -1 for one not wanted). */
static int64
fbook_user_index(FeatureLoad *ld, const char *name, int len)
{
	FeatureBook *b = ld->book;
	uint32		u;

	if (ld->closed)
		return name_index_find(&ld->users, name, len);
	u = name_index_add(&ld->users, name, len, name_index_hash(name, len));
	if (u == b->n_users)
	{
		if (b->n_users == ld->user_cap)
		{
			ld->user_cap *= 2;
			b->user_name = repalloc_huge(b->user_name, sizeof(char *) * ld->user_cap);
			b->user_len = repalloc_huge(b->user_len, sizeof(int) * ld->user_cap);
		}
		b->user_name[u] = ld->users.names[u].name;
		b->user_len[u] = len;
		b->n_users++;
	}
	return u;
}

/* up to this many users, their rows are read through the user index */
#define FBOOK_FEW_USERS 1000

/* the columns read, in this order */
enum
{
	COL_TXN_ID, COL_USER_ID, COL_TXN_TYPE, COL_AMOUNT, COL_VAT,
	COL_OLD_BALANCE, COL_NEW_BALANCE, COL_LOGGED_AT, COL_CURRENCY, N_COLS
};
static const char *const fbook_columns[N_COLS] = {
	"txn_id", "user_id", "txn_type", "amount", "vat", "old_balance", "new_balance", "logged_at",
	"currency"
};

/*
 * calo_recon.currencies into ld. Read from the heap without a check of the
 * caller's rights on it: the minor units are reference data that every
 * reader of the features needs (an analyst may read transaction_features
 * without a grant on currencies), and nothing else of the table is used.
 */
static void
fbook_read_currencies(FeatureLoad *ld)
{
	Oid			relid = calo_citus_local_relation("currencies");
	Relation	rel;
	AttrNumber	att_code,
				att_minor;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int			cap = 32;

	if (!OidIsValid(relid))
		elog(ERROR, "calo_recon.currencies does not exist");
	rel = table_open(relid, AccessShareLock);
	att_code = recon_attnum(rel, "code");
	att_minor = recon_attnum(rel, "minor_unit");
	ld->n_known = 0;
	ld->known_code = palloc(sizeof(char *) * cap);
	ld->known_minor = palloc(sizeof(int) * cap);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		code_null,
					minor_null;
		Datum		code = slot_getattr(slot, att_code, &code_null);
		Datum		minor = slot_getattr(slot, att_minor, &minor_null);

		if (code_null)
			continue;
		if (ld->n_known == cap)
		{
			cap *= 2;
			ld->known_code = repalloc(ld->known_code, sizeof(char *) * cap);
			ld->known_minor = repalloc(ld->known_minor, sizeof(int) * cap);
		}
		ld->known_code[ld->n_known] = TextDatumGetCString(code);
		ld->known_minor[ld->n_known] = bal_minor_unit(minor_null ? -1 : DatumGetInt16(minor));
		ld->n_known++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* The index of a row's currency in the book, added on first sight. */
static uint16
fbook_currency_index(FeatureLoad *ld, const char *code, int len)
{
	FeatureBook *b = ld->book;
	int			minor = bal_minor_unit(-1);

	if (ld->last_currency >= 0 && strncmp(b->currency_code[ld->last_currency], code, len) == 0
		&& b->currency_code[ld->last_currency][len] == '\0')
		return (uint16) ld->last_currency;
	for (int c = 0; c < b->n_currencies; c++)
		if (strncmp(b->currency_code[c], code, len) == 0 && b->currency_code[c][len] == '\0')
		{
			ld->last_currency = c;
			return (uint16) c;
		}
	if (b->n_currencies == PG_UINT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many currencies for the anomaly features in one call")));
	if (b->n_currencies == ld->currency_cap)
	{
		ld->currency_cap *= 2;
		b->currency_code = repalloc(b->currency_code, sizeof(char *) * ld->currency_cap);
		b->minor_unit = repalloc(b->minor_unit, sizeof(int) * ld->currency_cap);
	}
	for (int k = 0; k < ld->n_known; k++)
		if (strncmp(ld->known_code[k], code, len) == 0 && ld->known_code[k][len] == '\0')
			minor = ld->known_minor[k];
	b->currency_code[b->n_currencies] = pnstrdup(code, len);
	b->minor_unit[b->n_currencies] = minor;
	ld->last_currency = b->n_currencies;
	return (uint16) b->n_currencies++;
}

static void
fbook_consume(FeatureLoad *ld, const Datum *v, const bool *isnull)
{
	FeatureBook *b = ld->book;
	int64		row = b->n;
	feat_row   *r;
	const char *s;
	int			len;
	int64		user;
	FeatureMoney amount,
				vat,
				old_balance,
				new_balance;
	uint16		currency;

	for (int c = 0; c < N_COLS; c++)
		if (isnull[c] && c != COL_TXN_TYPE)
			elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
	s = recon_text_bytes(v[COL_USER_ID], &len);
	user = fbook_user_index(ld, s, len);
	if (user < 0)
		return;
	fbook_reserve(ld, row + 1);
	r = &ld->rows[row];

	s = recon_text_bytes(v[COL_TXN_ID], &len);
	if (ld->arena_len + len > ld->arena_cap)
	{
		ld->arena_cap = Max(ld->arena_cap * 2, ld->arena_len + len + 1024);
		b->txn_arena = recon_grow(b->txn_arena, 1, ld->arena_cap);
	}
	memcpy(b->txn_arena + ld->arena_len, s, len);
	b->txn_off[row] = ld->arena_len;
	ld->arena_len += len;

	b->user[row] = (uint32) user;

	r->type = BAL_LEGACY;
	if (!isnull[COL_TXN_TYPE])
	{
		s = recon_text_bytes(v[COL_TXN_TYPE], &len);
		if (len == 5 && memcmp(s, "DEBIT", 5) == 0)
			r->type = BAL_DEBIT;
		else if (len == 6 && memcmp(s, "CREDIT", 6) == 0)
			r->type = BAL_CREDIT;
		else
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("transaction type \"%.*s\" is neither CREDIT nor DEBIT", len, s)));
	}
	fbook_decode(v[COL_AMOUNT], &amount);
	fbook_decode(v[COL_VAT], &vat);
	fbook_decode(v[COL_OLD_BALANCE], &old_balance);
	fbook_decode(v[COL_NEW_BALANCE], &new_balance);
	r->amount = fbook_money(&amount);
	r->vat = fbook_money(&vat);
	r->balance_change = fbook_money_difference(&new_balance, &old_balance);
	r->logged_at = DatumGetTimestampTz(v[COL_LOGGED_AT]);
	s = recon_text_bytes(v[COL_CURRENCY], &len);
	currency = fbook_currency_index(ld, s, len);
	r->minor_unit = b->minor_unit[currency];
	b->currency[row] = currency;
	b->logged_at[row] = r->logged_at;
	b->n++;
}

static void
fbook_scan_all(FeatureLoad *ld)
{
	Oid			relid = ld->relid;
	Relation	rel;
	AttrNumber	att[N_COLS];
	AttrNumber	max = 0;
	TableScanDesc scan;
	TupleTableSlot *slot;
	double		estimate;

	/* the scan reads the heap directly: the caller's right to read comes first */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "transactions");
	rel = table_open(relid, AccessShareLock);
	estimate = Max(rel->rd_rel->reltuples, 0);
	for (int c = 0; c < N_COLS; c++)
	{
		att[c] = attnameAttNum(rel, fbook_columns[c], false);
		if (att[c] == InvalidAttrNumber)
			elog(ERROR, "calo_recon.transactions has no column \"%s\"", fbook_columns[c]);
		max = Max(max, att[c]);
	}
	fbook_reserve(ld, (int64) Min(estimate * 1.1 + 1024, (double) PG_INT32_MAX));
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum		v[N_COLS];
		bool		isnull[N_COLS];

		slot_getsomeattrs(slot, max);
		for (int c = 0; c < N_COLS; c++)
		{
			v[c] = slot->tts_values[att[c] - 1];
			isnull[c] = slot->tts_isnull[att[c] - 1];
		}
		fbook_consume(ld, v, isnull);
		if ((ld->book->n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* A few users: their rows through transactions_user_chain_idx (the planner's choice). */
static void
fbook_scan_users(FeatureLoad *ld, ArrayType *user_ids)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {PointerGetDatum(user_ids)};
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext caller = CurrentMemoryContext;	/* the book outlives SPI */

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(psprintf("SELECT txn_id, user_id, txn_type, amount, vat, old_balance, new_balance, "
								"logged_at, currency FROM %s WHERE user_id OPERATOR(pg_catalog.=) ANY ($1)",
								ld->relname), 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		v[N_COLS];
			bool		isnull[N_COLS];
			MemoryContext old = MemoryContextSwitchTo(caller);

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, v, isnull);
			fbook_consume(ld, v, isnull);
			MemoryContextSwitchTo(old);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/* ---------------------------------------------------------------------
 * Ordering and computing
 * --------------------------------------------------------------------- */
static FeatureBook *fbook_sorting;

static int
fbook_user_cmp(const void *pa, const void *pb)
{
	uint32		a = *(const uint32 *) pa;
	uint32		b = *(const uint32 *) pb;

	return varstr_cmp(fbook_sorting->user_name[a], fbook_sorting->user_len[a],
					  fbook_sorting->user_name[b], fbook_sorting->user_len[b],
					  DEFAULT_COLLATION_OID);
}

static void
fbook_compute(FeatureLoad *ld, bool want_context)
{
	FeatureBook *b = ld->book;
	int64		n = b->n;
	uint32		nusers = b->n_users;
	uint32	   *by_name = palloc(sizeof(uint32) * Max(nusers, 1));
	uint32	   *rank = palloc(sizeof(uint32) * Max(nusers, 1));
	int64	   *start = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * (nusers + 1));
	int64	   *fill = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * (nusers + 1));
	uint32	   *grouped = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(n, 1));
	int64		largest = 0;
	char	   *walk_raw;
	walk_row   *walk;
	feat_row   *local;
	uint32	   *order;
	double	   *scratch;
	double	   *out;
	double	   *context = NULL;
	char	   *arena;
	int64	   *off;
	uint32	   *user;
	int64	   *logged_at;
	double	   *amount;
	int8	   *direction;
	uint16	   *currency;
	int64		arena_len = 0;

	/* users by user_id in the database collation, as the SQL view's sort */
	for (uint32 u = 0; u < nusers; u++)
		by_name[u] = u;
	fbook_sorting = b;
	qsort(by_name, nusers, sizeof(uint32), fbook_user_cmp);
	for (uint32 k = 0; k < nusers; k++)
		rank[by_name[k]] = k;

	memset(start, 0, sizeof(int64) * (nusers + 1));
	for (int64 r = 0; r < n; r++)
		start[rank[b->user[r]] + 1]++;
	for (uint32 k = 0; k < nusers; k++)
	{
		largest = Max(largest, start[k + 1]);
		start[k + 1] += start[k];
	}
	memcpy(fill, start, sizeof(int64) * (nusers + 1));
	for (int64 r = 0; r < n; r++)
		grouped[fill[rank[b->user[r]]]++] = (uint32) r;

	/* walk_row holds bal_dec, which wants 16-byte alignment */
	walk_raw = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(walk_row) * Max(largest, 1) + 16);
	walk = (walk_row *) TYPEALIGN(16, walk_raw);
	local = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(feat_row) * Max(largest, 1));
	order = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(largest, 1));
	scratch = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * feat_scratch_size((size_t) largest));
	out = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * FEAT_COUNT * Max(largest, 1));
	b->features = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * FEAT_COUNT * Max(n, 1));
	if (want_context)
	{
		context = MemoryContextAllocHuge(CurrentMemoryContext,
										 sizeof(double) * FEAT_CONTEXT_COUNT * Max(largest, 1));
		b->context = MemoryContextAllocHuge(CurrentMemoryContext,
											sizeof(double) * FEAT_CONTEXT_COUNT * Max(n, 1));
	}
	arena = MemoryContextAllocHuge(CurrentMemoryContext, Max(b->txn_off[n], 1));
	off = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * (n + 1));
	user = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(n, 1));
	logged_at = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(n, 1));
	amount = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(n, 1));
	direction = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int8) * Max(n, 1));
	currency = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint16) * Max(n, 1));

	for (uint32 k = 0; k < nusers; k++)
	{
		int64		lo = start[k];
		int64		cnt = start[k + 1] - lo;

		CHECK_FOR_INTERRUPTS();
		for (int64 j = 0; j < cnt; j++)
		{
			uint32		r = grouped[lo + j];

			memset(&walk[j], 0, sizeof(walk_row));
			walk[j].logged_at = b->logged_at[r];
			walk[j].txn_id = b->txn_arena + b->txn_off[r];
			walk[j].txn_id_len = (size_t) (b->txn_off[r + 1] - b->txn_off[r]);
			walk[j].ref = (uint32) j;
			local[j] = ld->rows[r];
		}
		walk_order(walk, (size_t) cnt, NULL, NULL);
		for (int64 j = 0; j < cnt; j++)
			order[j] = walk[j].ref;
		feat_user(local, order, (size_t) cnt, scratch, out, context);
		for (int64 j = 0; j < cnt; j++)
		{
			int64		pos = lo + j;
			uint32		r = grouped[lo + order[j]];
			int64		len = b->txn_off[r + 1] - b->txn_off[r];

			memcpy(b->features + pos * FEAT_COUNT, out + (int64) order[j] * FEAT_COUNT,
				   sizeof(double) * FEAT_COUNT);
			if (context != NULL)
				memcpy(b->context + pos * FEAT_CONTEXT_COUNT,
					   context + (int64) order[j] * FEAT_CONTEXT_COUNT,
					   sizeof(double) * FEAT_CONTEXT_COUNT);
			off[pos] = arena_len;
			memcpy(arena + arena_len, b->txn_arena + b->txn_off[r], len);
			arena_len += len;
			user[pos] = b->user[r];
			logged_at[pos] = b->logged_at[r];
			amount[pos] = ld->rows[r].amount;
			direction[pos] = (int8) feat_direction(&ld->rows[r]);
			currency[pos] = b->currency[r];
		}
	}
	off[n] = arena_len;
	pfree(b->txn_arena);
	pfree(b->txn_off);
	pfree(b->user);
	pfree(b->logged_at);
	pfree(b->currency);
	b->txn_arena = arena;
	b->amount = amount;
	b->direction = direction;
	b->currency = currency;
	b->txn_off = off;
	b->user = user;
	b->logged_at = logged_at;
	pfree(walk_raw);
	pfree(local);
	pfree(order);
	pfree(scratch);
	pfree(out);
	if (context != NULL)
		pfree(context);
	pfree(grouped);
	pfree(start);
	pfree(fill);
	pfree(by_name);
	pfree(rank);
}

static void
fbook_load_relation(FeatureBook *book, ArrayType *user_ids, bool want_context, Oid relid, const char *relname)
{
	FeatureLoad ld;

	memset(book, 0, sizeof(*book));
	memset(&ld, 0, sizeof(ld));
	ld.book = book;
	ld.relid = relid;
	ld.relname = relname;
	ld.user_cap = 1024;
	book->user_name = palloc(sizeof(char *) * ld.user_cap);
	book->user_len = palloc(sizeof(int) * ld.user_cap);
	name_index_init(&ld.users, 1024);
	fbook_reserve(&ld, 1024);
	ld.arena_cap = 16384;
	book->txn_arena = palloc(ld.arena_cap);
	ld.currency_cap = 8;
	ld.last_currency = -1;
	book->currency_code = palloc(sizeof(char *) * ld.currency_cap);
	book->minor_unit = palloc(sizeof(int) * ld.currency_cap);
	fbook_read_currencies(&ld);
	if (user_ids == NULL)
		fbook_scan_all(&ld);
	else if (ArrayGetNItems(ARR_NDIM(user_ids), ARR_DIMS(user_ids)) <= FBOOK_FEW_USERS)
		fbook_scan_users(&ld, user_ids);
	else
	{
		/* many users: one sequential scan keeps their rows */
		Datum	   *names;
		bool	   *nulls;
		int			n;

		deconstruct_array(user_ids, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
			{
				int			len;
				const char *s = recon_text_bytes(names[i], &len);

				(void) fbook_user_index(&ld, s, len);
			}
		ld.closed = true;
		fbook_scan_all(&ld);
	}
	book->txn_off[book->n] = ld.arena_len;
	fbook_compute(&ld, want_context);
	pfree(ld.rows);
	/* the names stay: the book has them */
	pfree(ld.users.slots);
	pfree(ld.users.names);
}

/* The index of currency code in a book built from rows, added on first sight. */
static uint16
fbook_book_currency(FeatureBook *book, int *cap, const char *code, int len, int minor_unit)
{
	for (int c = book->n_currencies - 1; c >= 0; c--)
		if (strncmp(book->currency_code[c], code, len) == 0 && book->currency_code[c][len] == '\0')
			return (uint16) c;
	if (book->n_currencies == PG_UINT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many currencies for the anomaly features in one call")));
	if (book->n_currencies == *cap)
	{
		*cap *= 2;
		book->currency_code = repalloc(book->currency_code, sizeof(char *) * *cap);
		book->minor_unit = repalloc(book->minor_unit, sizeof(int) * *cap);
	}
	book->currency_code[book->n_currencies] = pnstrdup(code, len);
	book->minor_unit[book->n_currencies] = minor_unit;
	return (uint16) book->n_currencies++;
}

/* A float8[] of exactly n elements without NULLs, copied to out */
static void
fbook_copy_float8s(Datum array, double *out, int n, const char *what)
{
	ArrayType  *a = DatumGetArrayTypeP(array);

	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != n || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "transaction_features_placement returned %s that are not %d float8", what, n);
	memcpy(out, ARR_DATA_PTR(a), sizeof(double) * n);
}

/*
 * On a Citus cluster (README "Scaling out with Citus"): the features are
 * computed per shard, next to the rows (transaction_features_placement()
 * through calo_recon.shard_anchors: each user's rows are in one shard), and
 * only the results come to this node, in the order of one node: users by
 * user_id in the database collation, each user's rows in chain order. The
 * shards also send what the explanations need of each row (amount,
 * direction, currency and its minor unit, and the context when asked for).
 */
static void
fbook_load_distributed(FeatureBook *book, ArrayType *user_ids, bool want_context)
{
	enum
	{
		P_TXN_ID, P_USER_ID, P_LOGGED_AT, P_FEATURES, P_CONTEXT, P_AMOUNT, P_DIRECTION,
		P_CURRENCY, P_MINOR_UNIT, P_COUNT
	};
	Oid			argtypes[2] = {TEXTARRAYOID, BOOLOID};
	Datum		args[2] = {PointerGetDatum(user_ids), BoolGetDatum(want_context)};
	char		nulls[2] = {user_ids == NULL ? 'n' : ' ', ' '};
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext caller = CurrentMemoryContext;	/* the book outlives SPI */
	int64		cap = 1024;
	int64		arena_cap = 16384;
	int64		arena_len = 0;
	uint32		user_cap = 1024;
	int			currency_cap = 8;

	memset(book, 0, sizeof(*book));
	book->txn_off = palloc(sizeof(int64) * (cap + 1));
	book->user = palloc(sizeof(uint32) * cap);
	book->logged_at = palloc(sizeof(int64) * cap);
	book->features = palloc(sizeof(double) * FEAT_COUNT * cap);
	if (want_context)
		book->context = palloc(sizeof(double) * FEAT_CONTEXT_COUNT * cap);
	book->amount = palloc(sizeof(double) * cap);
	book->direction = palloc(sizeof(int8) * cap);
	book->currency = palloc(sizeof(uint16) * cap);
	book->txn_arena = palloc(arena_cap);
	book->user_name = palloc(sizeof(char *) * user_cap);
	book->user_len = palloc(sizeof(int) * user_cap);
	book->currency_code = palloc(sizeof(char *) * currency_cap);
	book->minor_unit = palloc(sizeof(int) * currency_cap);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare("SELECT f.txn_id, f.user_id, f.logged_at, f.features, f.context, f.amount, "
					   "       f.direction, f.currency, f.minor_unit "
					   "FROM calo_recon.shard_anchors a "
					   "CROSS JOIN LATERAL calo_recon.transaction_features_placement(a.tableoid, $1, $2) f "
					   "ORDER BY f.user_id, calo_recon.chain_key(f.logged_at, f.txn_id)",
					   2, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, nulls, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		if (SPI_tuptable->tupdesc->natts != P_COUNT)
			elog(ERROR, "transaction_features_placement must return %d columns", P_COUNT);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		v[P_COUNT];
			bool		isnull[P_COUNT];
			int64		row = book->n;
			const char *s;
			int			len;
			MemoryContext spi = MemoryContextSwitchTo(caller);

			heap_deform_tuple(tup, desc, v, isnull);
			for (int c = 0; c < P_COUNT; c++)
				if (isnull[c] && (c != P_CONTEXT || want_context))
					elog(ERROR, "transaction_features_placement returned a NULL");
			if (row + 1 > cap)
			{
				cap *= 2;
				if (cap > (int64) PG_UINT32_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many transactions for the anomaly features in one call")));
				book->txn_off = repalloc_huge(book->txn_off, sizeof(int64) * (cap + 1));
				book->user = repalloc_huge(book->user, sizeof(uint32) * cap);
				book->logged_at = repalloc_huge(book->logged_at, sizeof(int64) * cap);
				book->features = repalloc_huge(book->features, sizeof(double) * FEAT_COUNT * cap);
				if (want_context)
					book->context = repalloc_huge(book->context, sizeof(double) * FEAT_CONTEXT_COUNT * cap);
				book->amount = repalloc_huge(book->amount, sizeof(double) * cap);
				book->direction = repalloc_huge(book->direction, sizeof(int8) * cap);
				book->currency = repalloc_huge(book->currency, sizeof(uint16) * cap);
			}
			s = recon_text_bytes(v[P_TXN_ID], &len);
			if (arena_len + len > arena_cap)
			{
				arena_cap = Max(arena_cap * 2, arena_len + len + 1024);
				book->txn_arena = repalloc_huge(book->txn_arena, arena_cap);
			}
			memcpy(book->txn_arena + arena_len, s, len);
			book->txn_off[row] = arena_len;
			arena_len += len;
			/* rows come user by user: a new user_id is a new user */
			s = recon_text_bytes(v[P_USER_ID], &len);
			if (book->n_users == 0
				|| book->user_len[book->n_users - 1] != len
				|| memcmp(book->user_name[book->n_users - 1], s, len) != 0)
			{
				if (book->n_users == user_cap)
				{
					user_cap *= 2;
					book->user_name = repalloc_huge(book->user_name, sizeof(char *) * user_cap);
					book->user_len = repalloc_huge(book->user_len, sizeof(int) * user_cap);
				}
				book->user_name[book->n_users] = pnstrdup(s, len);
				book->user_len[book->n_users] = len;
				book->n_users++;
			}
			book->user[row] = book->n_users - 1;
			book->logged_at[row] = DatumGetTimestampTz(v[P_LOGGED_AT]);
			fbook_copy_float8s(v[P_FEATURES], book->features + row * FEAT_COUNT, FEAT_COUNT, "features");
			if (want_context)
				fbook_copy_float8s(v[P_CONTEXT], book->context + row * FEAT_CONTEXT_COUNT,
								   FEAT_CONTEXT_COUNT, "a context");
			book->amount[row] = DatumGetFloat8(v[P_AMOUNT]);
			book->direction[row] = (int8) DatumGetInt16(v[P_DIRECTION]);
			s = recon_text_bytes(v[P_CURRENCY], &len);
			book->currency[row] = fbook_book_currency(book, &currency_cap, s, len,
													  DatumGetInt32(v[P_MINOR_UNIT]));
			book->n++;
			MemoryContextSwitchTo(spi);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	book->txn_off[book->n] = arena_len;
}

bool
fbook_is_distributed(void)
{
	return calo_citus_is_distributed(get_relname_relid("transactions", get_namespace_oid("calo_recon", false)));
}

void
fbook_load(FeatureBook *book, ArrayType *user_ids, bool want_context)
{
	if (fbook_is_distributed())
		fbook_load_distributed(book, user_ids, want_context);
	else
		fbook_load_relation(book, user_ids, want_context,
							get_relname_relid("transactions", get_namespace_oid("calo_recon", false)),
							"calo_recon.transactions");
}

void
fbook_load_placement(FeatureBook *book, Oid anchor_shard, ArrayType *user_ids, bool want_context)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *name;
	Oid			relid;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	relid = calo_citus_colocated_shard(anchor_shard, "transactions", &name);
	name = MemoryContextStrdup(caller, name);
	SPI_finish();
	MemoryContextSwitchTo(caller);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %s has no placement on this node", name)));
	fbook_load_relation(book, user_ids, want_context, relid, name);
}

/*
 * calo_recon.transaction_features_placement(anchor_shard oid, user_ids text[],
 *   want_context boolean) RETURNS TABLE (txn_id, user_id, logged_at, features,
 *   context, amount, direction, currency, minor_unit)
 * The feature book of the given users over the shard of transactions in the
 * shard group of anchor_shard, on the node that holds it.
 */
Datum
calo_recon_transaction_features_placement(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		want_context = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	FeatureBook book;
	MemoryContext work;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != 9)
		elog(ERROR, "transaction_features_placement must return 9 columns");
	work = AllocSetContextCreate(CurrentMemoryContext, "calo_recon features", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	fbook_load_placement(&book, PG_GETARG_OID(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), want_context);
	for (int64 i = 0; i < book.n; i++)
	{
		Datum		values[9];
		bool		nulls[9];
		Datum		elems[Max((int) FEAT_COUNT, (int) FEAT_CONTEXT_COUNT)];

		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		memset(nulls, 0, sizeof(nulls));
		values[0] = PointerGetDatum(cstring_to_text_with_len(book.txn_arena + book.txn_off[i],
															 (int) (book.txn_off[i + 1] - book.txn_off[i])));
		values[1] = PointerGetDatum(cstring_to_text_with_len(book.user_name[book.user[i]],
															 book.user_len[book.user[i]]));
		values[2] = TimestampTzGetDatum(book.logged_at[i]);
		for (int j = 0; j < FEAT_COUNT; j++)
			elems[j] = Float8GetDatum(book.features[i * FEAT_COUNT + j]);
		values[3] = PointerGetDatum(construct_array(elems, FEAT_COUNT, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (want_context)
		{
			for (int j = 0; j < FEAT_CONTEXT_COUNT; j++)
				elems[j] = Float8GetDatum(book.context[i * FEAT_CONTEXT_COUNT + j]);
			values[4] = PointerGetDatum(construct_array(elems, FEAT_CONTEXT_COUNT, FLOAT8OID, sizeof(float8),
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		}
		else
			nulls[4] = true;
		values[5] = Float8GetDatum(book.amount[i]);
		values[6] = Int16GetDatum((int16) book.direction[i]);
		values[7] = CStringGetTextDatum(book.currency_code[book.currency[i]]);
		values[8] = Int32GetDatum(book.minor_unit[book.currency[i]]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(DatumGetPointer(values[0]));
		pfree(DatumGetPointer(values[1]));
		pfree(DatumGetPointer(values[3]));
		if (want_context)
			pfree(DatumGetPointer(values[4]));
		pfree(DatumGetPointer(values[7]));
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/*
 * calo_recon.compute_transaction_features(user_ids text[] DEFAULT NULL)
 *   RETURNS TABLE (txn_id, user_id, logged_at, features, amount, ..., direction)
 */
Datum
calo_recon_compute_transaction_features(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FeatureBook book;
	MemoryContext work;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != 4 + FEAT_COUNT)
		elog(ERROR, "compute_transaction_features must return %d columns", 4 + FEAT_COUNT);
	work = AllocSetContextCreate(CurrentMemoryContext, "calo_recon features", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	fbook_load(&book, PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0), false);
	for (int64 i = 0; i < book.n; i++)
	{
		Datum		values[4 + FEAT_COUNT];
		bool		nulls[4 + FEAT_COUNT];
		Datum		elems[FEAT_COUNT];
		const double *f = book.features + i * FEAT_COUNT;

		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		memset(nulls, 0, sizeof(nulls));
		for (int j = 0; j < FEAT_COUNT; j++)
			elems[j] = Float8GetDatum(f[j]);
		values[0] = PointerGetDatum(cstring_to_text_with_len(book.txn_arena + book.txn_off[i],
															 (int) (book.txn_off[i + 1] - book.txn_off[i])));
		values[1] = PointerGetDatum(cstring_to_text_with_len(book.user_name[book.user[i]],
															 book.user_len[book.user[i]]));
		values[2] = TimestampTzGetDatum(book.logged_at[i]);
		values[3] = PointerGetDatum(construct_array(elems, FEAT_COUNT, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		for (int j = 0; j < FEAT_COUNT; j++)
			values[4 + j] = elems[j];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(DatumGetPointer(values[0]));
		pfree(DatumGetPointer(values[1]));
		pfree(DatumGetPointer(values[3]));
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/*
 * recon_glue.c: PostgreSQL glue of the reconciliation (the rules: balance.h,
 * the order: walk.h).
 *
 *   calo_recon.reconcile(user_ids text[])    materializes the findings
 *   calo_recon.check_transaction(...)        one row against its predecessor
 *   calo_recon.exact_decimal(numeric, bool)  the numeric -> core conversion
 *
 *   calo_recon.chain_findings(txn_ids text[]) the walk's findings of some rows
 *   calo_recon.chain_findings_since(...)     the same from the users and their
 *                                            first new instant (the alert trigger)
 *   calo_recon.chain_key, tolerance, is_credit, is_overdraft: the rules of
 *                                            the walk, for the SQL views
 *
 * reconcile() reads the users' transactions (a sequential scan for all
 * users, the user/chain index through SPI for a few), keeps per row only
 * what the walk needs (amounts, balances, time, tid), groups rows per user
 * with a counting sort and hands each user's rows to the walk of walk.c,
 * which orders them and emits the findings. txn_id is fetched back by tid
 * only for ties in logged_at and for the rows that have a finding.  The
 * walk also hands each user's rows to the report totals
 * (report_totals_glue.c), which reconcile() stores.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "utils/fmgrprotos.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/fmgroids.h"
#include "utils/timestamp.h"
#include "storage/itemptr.h"

#include "balance.h"
#include "bulk_write_glue.h"
#include "citus_glue.h"
#include "locks.h"
#include "module_glue.h"
#include "name_index_glue.h"
#include "recon_glue.h"
#include "report_totals_glue.h"
#include "v11_glue.h"
#include "walk.h"

PG_FUNCTION_INFO_V1(calo_recon_reconcile);
PG_FUNCTION_INFO_V1(calo_recon_reconcile_placement);
PG_FUNCTION_INFO_V1(calo_recon_check_transaction);
PG_FUNCTION_INFO_V1(calo_recon_exact_decimal);
PG_FUNCTION_INFO_V1(calo_recon_chain_findings);
PG_FUNCTION_INFO_V1(calo_recon_chain_findings_since);
PG_FUNCTION_INFO_V1(calo_recon_chain_findings_since_placement);
PG_FUNCTION_INFO_V1(calo_recon_chain_key);
PG_FUNCTION_INFO_V1(calo_recon_tolerance);
PG_FUNCTION_INFO_V1(calo_recon_within_tolerance);
PG_FUNCTION_INFO_V1(calo_recon_wallet_gap);
PG_FUNCTION_INFO_V1(calo_recon_is_credit);
PG_FUNCTION_INFO_V1(calo_recon_is_overdraft);
PG_FUNCTION_INFO_V1(calo_recon_finding_rank);
PG_FUNCTION_INFO_V1(calo_recon_is_break);

/* ---------------------------------------------------------------------
 * numeric -> bal_dec
 *
 * The numeric varlena layout is frozen by pg_upgrade compatibility
 * (src/backend/utils/adt/numeric.c): a 16-bit header that is either the
 * short form (sign, dscale, 7-bit weight) or the long form (sign + dscale,
 * then a 16-bit weight), followed by base-10000 digits. Anything that does
 * not look exactly like that goes through numeric_out and the text parser.
 * --------------------------------------------------------------------- */
#define RN_SIGN_MASK		0xC000
#define RN_POS				0x0000
#define RN_NEG				0x4000
#define RN_SHORT			0x8000
#define RN_SPECIAL			0xC000
#define RN_NAN				0xC000
#define RN_PINF				0xD000
#define RN_NINF				0xF000
#define RN_SHORT_SIGN		0x2000
#define RN_SHORT_WSIGN		0x0040
#define RN_SHORT_WMASK		0x003F
#define RN_MAX_DIGITS		16	/* more base-10000 digits than 10^20 with 18 places needs */

static bal_status
recon_decode_via_text(Datum value, bal_dec *out)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, value));
	bal_status	st = bal_parse(s, strlen(s), out);

	pfree(s);
	return st;
}

bal_status
recon_decode_numeric(Datum value, bal_dec *out)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(value);
	struct varlena *v = pg_detoast_datum_packed(raw);
	const char *p = VARDATA_ANY(v);
	Size		len = VARSIZE_ANY_EXHDR(v);
	uint16		header;
	uint16		digits[RN_MAX_DIGITS];
	int			weight;
	bool		negative;
	Size		hdrlen;
	int			ndigits;
	bal_status	st = BAL_SYNTAX;

	if (len < sizeof(uint16))
		goto fallback;
	memcpy(&header, p, sizeof(uint16));
	switch (header & RN_SIGN_MASK)
	{
		case RN_SPECIAL:
			if ((header == RN_NAN || header == RN_PINF || header == RN_NINF)
				&& len == sizeof(uint16))
				st = BAL_SPECIAL;
			goto done;
		case RN_SHORT:
			negative = (header & RN_SHORT_SIGN) != 0;
			weight = (header & RN_SHORT_WMASK) - ((header & RN_SHORT_WSIGN) ? 64 : 0);
			hdrlen = sizeof(uint16);
			break;
		default:
			{
				int16		w;

				if (len < 2 * sizeof(uint16))
					goto fallback;
				negative = (header & RN_SIGN_MASK) == RN_NEG;
				memcpy(&w, p + sizeof(uint16), sizeof(int16));
				weight = w;
				hdrlen = 2 * sizeof(uint16);
				break;
			}
	}
	if ((len - hdrlen) % sizeof(uint16) != 0)
		goto fallback;
	ndigits = (int) ((len - hdrlen) / sizeof(uint16));
	if (ndigits > RN_MAX_DIGITS)
		goto fallback;
	memcpy(digits, p + hdrlen, ndigits * sizeof(uint16));
	st = bal_from_nbase(digits, ndigits, weight, negative, out);
	if (st == BAL_SYNTAX)
		goto fallback;			/* a digit above 9999: not the layout we know */
	goto done;

fallback:
	st = recon_decode_via_text(value, out);
done:
	if (v != raw)
		pfree(v);
	return st;
}

Datum
recon_dec_to_numeric(bal_dec value)
{
	char		buf[BAL_FORMAT_MAX];

	bal_format(value, buf);
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * calo_recon.exact_decimal(value numeric, via_text boolean DEFAULT false)
 * The exact value the reconciliation computes with, as text; via_text
 * forces the numeric_out fallback (used to test one path against the other).
 */
Datum
calo_recon_exact_decimal(PG_FUNCTION_ARGS)
{
	Datum		value = PG_GETARG_DATUM(0);
	bool		via_text = PG_GETARG_BOOL(1);
	bal_dec		d;
	bal_status	st;
	char		buf[BAL_FORMAT_MAX];

	st = via_text ? recon_decode_via_text(value, &d) : recon_decode_numeric(value, &d);
	if (st == BAL_SPECIAL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("NaN and infinity are not balances")));
	if (st != BAL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("value outside the exact range of the reconciliation: %s",
						bal_status_name(st)),
				 errhint("Balances must be below 10^20 in magnitude with at most 18 decimal places.")));
	bal_format(d, buf);
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}

/*
 * palloc only guarantees 8-byte alignment and __int128 wants 16 (the
 * compiler may use aligned SSE moves), so every bal_dec or bal_check kept
 * in palloc'd memory is stored as bytes and copied with memcpy.
 */
typedef struct PackedDec
{
	char		bytes[sizeof(bal_dec)];
} PackedDec;

typedef struct PackedCheck
{
	char		bytes[sizeof(bal_check)];
} PackedCheck;

static inline bal_dec
recon_get(const PackedDec *p)
{
	bal_dec		v;

	memcpy(&v, p->bytes, sizeof(v));
	return v;
}

static inline void
recon_put(PackedDec *p, bal_dec v)
{
	memcpy(p->bytes, &v, sizeof(v));
}

static inline bal_check
recon_get_check(const PackedCheck *p)
{
	bal_check	c;

	memcpy(&c, p->bytes, sizeof(c));
	return c;
}

static inline void
recon_put_check_bytes(PackedCheck *p, const bal_check *c)
{
	memcpy(p->bytes, c, sizeof(*c));
}

/* ---------------------------------------------------------------------
 * Currencies: minor units from calo_recon.currencies (needs SPI connected)
 * --------------------------------------------------------------------- */
typedef struct ReconCurrency
{
	char	   *code;
	int			len;
	PackedDec	tolerance;
	Datum		code_datum;		/* text */
	Datum		tolerance_datum;	/* numeric */
} ReconCurrency;

typedef struct ReconCurrencies
{
	ReconCurrency *items;
	int			n;
	int			cap;
	int			last;			/* lookup cache: rows come in runs */
	char	  **known_code;
	int		   *known_minor;
	int			nknown;
} ReconCurrencies;

/* table: calo_recon.currencies, or its shard on a Citus worker */
static void
recon_load_currencies(ReconCurrencies *cur, const char *table)
{
	uint64		i;

	memset(cur, 0, sizeof(*cur));
	if (SPI_execute(psprintf("SELECT code, minor_unit FROM %s", table), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", table);
	cur->nknown = (int) SPI_processed;
	cur->known_code = palloc(sizeof(char *) * (cur->nknown + 1));
	cur->known_minor = palloc(sizeof(int) * (cur->nknown + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		m;

		cur->known_code[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		m = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		cur->known_minor[i] = isnull ? BAL_DEFAULT_MINOR_UNIT : DatumGetInt16(m);
	}
	cur->cap = 8;
	cur->items = palloc(sizeof(ReconCurrency) * cur->cap);
	cur->last = -1;
}

/* No known currency: every code interned gets the default minor unit. */
static void
recon_no_currencies(ReconCurrencies *cur)
{
	memset(cur, 0, sizeof(*cur));
	cur->cap = 8;
	cur->items = palloc(sizeof(ReconCurrency) * cur->cap);
	cur->last = -1;
}

/* Index of a currency code, interned on first sight. */
static int
recon_currency_index(ReconCurrencies *cur, const char *code, int len)
{
	int			i;
	int			minor = BAL_DEFAULT_MINOR_UNIT;
	ReconCurrency *c;

	if (cur->last >= 0 && cur->items[cur->last].len == len
		&& memcmp(cur->items[cur->last].code, code, len) == 0)
		return cur->last;
	for (i = 0; i < cur->n; i++)
		if (cur->items[i].len == len && memcmp(cur->items[i].code, code, len) == 0)
			return cur->last = i;
	if (cur->n >= PG_UINT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("more than %d distinct currencies", PG_UINT16_MAX)));
	for (i = 0; i < cur->nknown; i++)
		if ((int) strlen(cur->known_code[i]) == len && memcmp(cur->known_code[i], code, len) == 0)
			minor = cur->known_minor[i];
	if (cur->n == cur->cap)
	{
		cur->cap *= 2;
		cur->items = repalloc(cur->items, sizeof(ReconCurrency) * cur->cap);
	}
	c = &cur->items[cur->n];
	c->code = pnstrdup(code, len);
	c->len = len;
	recon_put(&c->tolerance, bal_tolerance(minor));
	c->code_datum = PointerGetDatum(cstring_to_text_with_len(code, len));
	c->tolerance_datum = recon_dec_to_numeric(bal_tolerance(minor));
	return cur->last = cur->n++;
}

/* ---------------------------------------------------------------------
 * Rows, stored column-wise, only what the chain walk needs
 * --------------------------------------------------------------------- */
#define RF_BALANCES	0x01		/* old and new balances are representable */
#define RF_AMOUNTS	0x02		/* amount and vat are representable */
#define RF_NEGATIVE	0x04		/* new_balance < 0 (read when not RF_BALANCES) */
#define RF_DEBIT	0x08
#define RF_CREDIT	0x10
#define RF_DOWN		0x20		/* new_balance < old_balance (read when not RF_BALANCES) */

typedef struct OutFinding
{
	int64		row;
	PackedCheck check;
	bool		first_break;
} OutFinding;

/*
 * The user lookup is a chain of dependent cache misses (slot, entry, name)
 * for every row; rows are resolved in small batches whose loads are
 * prefetched stage by stage, so the misses of a batch overlap.
 */
#define RECON_BATCH 16
#define RECON_BATCH_NAME 64

typedef struct PendingUser
{
	int64		row;
	uint32		hash;
	int			len;
	char		name[RECON_BATCH_NAME];
} PendingUser;

typedef struct ReconState
{
	MemoryContext cxt;
	Relation	rel;
	/* quoted qualified names: the tables, or their shards on a Citus worker */
	const char *txn_table;
	const char *findings_table;
	Snapshot	snapshot;
	TupleTableSlot *fetch_slot;
	AttrNumber	att_txn_id;
	ReconCurrencies currencies;
	NameIndex	users;

	int64		n;
	int64		cap;
	PackedDec  *amount;
	PackedDec  *vat;
	PackedDec  *old_balance;
	PackedDec  *new_balance;
	int64	   *logged_at;
	uint32	   *user;
	ItemPointerData *tid;
	uint16	   *currency;
	uint8	   *flags;

	MemoryContext tie_cxt;		/* txn_ids fetched to break ties, per user */

	OutFinding *out;
	int64		nout;
	int64		cap_out;

	PendingUser pending[RECON_BATCH];
	int			npending;

	int64		arithmetic_breaks;
	int64		chain_breaks;
	int64		drift;
	int64		overdrafts;
	int64		out_of_range;

	/* report totals (collect_totals): per user, per (currency, day), runs */
	bool		collect_totals;
	ReportTotals *totals;		/* report_totals_glue.h, made by the walk */
	bool		scan_txn_ids;	/* recon_scan_query reads txn_id into txn_ids */
	char	  **txn_ids;		/* per row, when the scan read them (no tid fetch) */
} ReconState;

static void
recon_rows_reserve(ReconState *st, int64 need)
{
	int64		cap;

	if (need <= st->cap)
		return;
	cap = Max(need, st->cap * 2);
	if (cap > (int64) PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many transactions to reconcile in one call"),
				 errhint("Reconcile the users in batches: calo_recon.reconcile(user_ids).")));
	st->amount = recon_grow(st->amount, sizeof(PackedDec), cap);
	st->vat = recon_grow(st->vat, sizeof(PackedDec), cap);
	st->old_balance = recon_grow(st->old_balance, sizeof(PackedDec), cap);
	st->new_balance = recon_grow(st->new_balance, sizeof(PackedDec), cap);
	st->logged_at = recon_grow(st->logged_at, sizeof(int64), cap);
	st->user = recon_grow(st->user, sizeof(uint32), cap);
	st->tid = recon_grow(st->tid, sizeof(ItemPointerData), cap);
	st->currency = recon_grow(st->currency, sizeof(uint16), cap);
	st->flags = recon_grow(st->flags, sizeof(uint8), cap);
	st->cap = cap;
}

static void
recon_flush_users(ReconState *st)
{
	NameIndex *u = &st->users;
	int			i;

	for (i = 0; i < st->npending; i++)
	{
		uint64		e = u->slots[st->pending[i].hash & (u->nslots - 1)];

		if (e != 0 && (uint32) (e >> 32) == st->pending[i].hash)
			__builtin_prefetch(&u->names[(uint32) e - 1]);
	}
	for (i = 0; i < st->npending; i++)
	{
		uint64		e = u->slots[st->pending[i].hash & (u->nslots - 1)];

		if (e != 0 && (uint32) (e >> 32) == st->pending[i].hash)
			__builtin_prefetch(u->names[(uint32) e - 1].name);
	}
	for (i = 0; i < st->npending; i++)
	{
		PendingUser *p = &st->pending[i];

		st->user[p->row] = name_index_add(u, p->name, p->len, p->hash);
	}
	st->npending = 0;
}

/* txn_type as text: NULL is the legacy form; errcode for anything else */
static bal_type
recon_type_from_text(Datum value, bool isnull, int errcode_other)
{
	const char *s;
	int			len;

	if (isnull)
		return BAL_LEGACY;
	s = recon_text_bytes(value, &len);
	if (len == 5 && memcmp(s, "DEBIT", 5) == 0)
		return BAL_DEBIT;
	if (len == 6 && memcmp(s, "CREDIT", 6) == 0)
		return BAL_CREDIT;
	ereport(ERROR,
			(errcode(errcode_other),
			 errmsg("transaction type \"%.*s\" is neither CREDIT nor DEBIT", len, s),
			 errhint("Use NULL for the legacy form without a type.")));
	return BAL_LEGACY;			/* not reached */
}

/* Sign of a numeric that the exact math cannot hold (NaN counts as positive). */
static int
recon_numeric_sign(Datum value)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, value,
											 DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/* One transaction: intern, decode, store what the walk needs. */
static void
recon_consume(ReconState *st, ItemPointer tid, Datum user_id, Datum txn_type,
			  bool type_null, Datum currency, Datum amount, Datum vat,
			  Datum old_balance, Datum new_balance, TimestampTz logged_at)
{
	int64		row = st->n;
	const char *s;
	int			len;
	bal_dec		a = 0,
				v = 0,
				o = 0,
				nw = 0;
	uint8		flags = 0;

	recon_rows_reserve(st, row + 1);
	s = recon_text_bytes(user_id, &len);
	if (len > RECON_BATCH_NAME)
		st->user[row] = name_index_add(&st->users, s, len,
										 hash_bytes((const unsigned char *) s, len));
	else
	{
		PendingUser *p = &st->pending[st->npending++];

		p->row = row;
		p->len = len;
		memcpy(p->name, s, len);
		p->hash = hash_bytes((const unsigned char *) s, len);
		__builtin_prefetch(&st->users.slots[p->hash & (st->users.nslots - 1)]);
		if (st->npending == RECON_BATCH)
			recon_flush_users(st);
	}
	s = recon_text_bytes(currency, &len);
	st->currency[row] = (uint16) recon_currency_index(&st->currencies, s, len);
	switch (recon_type_from_text(txn_type, type_null, ERRCODE_DATA_EXCEPTION))
	{
		case BAL_DEBIT:
			flags |= RF_DEBIT;
			break;
		case BAL_CREDIT:
			flags |= RF_CREDIT;
			break;
		case BAL_LEGACY:
			break;
	}
	if (recon_decode_numeric(old_balance, &o) == BAL_OK
		&& recon_decode_numeric(new_balance, &nw) == BAL_OK)
		flags |= RF_BALANCES;
	else
	{
		if (recon_numeric_sign(new_balance) < 0)
			flags |= RF_NEGATIVE;
		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, new_balance, old_balance)) < 0)
			flags |= RF_DOWN;
	}
	if (recon_decode_numeric(amount, &a) == BAL_OK
		&& recon_decode_numeric(vat, &v) == BAL_OK)
		flags |= RF_AMOUNTS;
	recon_put(&st->amount[row], a);
	recon_put(&st->vat[row], v);
	recon_put(&st->old_balance[row], o);
	recon_put(&st->new_balance[row], nw);
	st->logged_at[row] = logged_at;
	st->tid[row] = *tid;
	st->flags[row] = flags;
	st->n++;
}

/* ---------------------------------------------------------------------
 * Chain order: logged_at, then txn_id (byte order), fetched by tid on ties
 * --------------------------------------------------------------------- */
static char *
recon_fetch_txn_id(ReconState *st, int64 row)
{
	bool		isnull;
	Datum		d;

	if (st->txn_ids != NULL)
		return st->txn_ids[row];
	if (!table_tuple_fetch_row_version(st->rel, &st->tid[row], st->snapshot, st->fetch_slot))
		elog(ERROR, "transaction at (%u,%u) vanished during reconciliation",
			 ItemPointerGetBlockNumber(&st->tid[row]), ItemPointerGetOffsetNumber(&st->tid[row]));
	d = slot_getattr(st->fetch_slot, st->att_txn_id, &isnull);
	return TextDatumGetCString(d);
}

/* walk.c asks for the txn_id of rows that tie on logged_at */
static void
recon_walk_fetch(void *ctx, walk_row *row)
{
	ReconState *st = (ReconState *) ctx;
	MemoryContext old = MemoryContextSwitchTo(st->tie_cxt);

	row->txn_id = recon_fetch_txn_id(st, row->ref);
	row->txn_id_len = strlen(row->txn_id);
	MemoryContextSwitchTo(old);
}

static void
recon_walk_emit(void *ctx, const walk_row *row, const bal_check *check, bool first_break)
{
	ReconState *st = (ReconState *) ctx;
	OutFinding *o;

	switch (check->finding)
	{
		case BAL_OVERDRAFT:
			st->overdrafts++;	/* counted, not stored: the overdrafts view lists them */
			return;
		case BAL_ARITHMETIC:
			st->arithmetic_breaks++;
			break;
		case BAL_CHAIN:
			st->chain_breaks++;
			break;
		case BAL_DRIFT:
		case BAL_CHAIN_DRIFT:
			st->drift++;
			break;
		case BAL_OUT_OF_RANGE:
			st->out_of_range++;
			break;
		case BAL_NONE:
			return;
	}
	if (st->nout == st->cap_out)
	{
		st->cap_out = Max(1024, st->cap_out * 2);
		st->out = recon_grow(st->out, sizeof(OutFinding), st->cap_out);
	}
	o = &st->out[st->nout++];
	o->row = row->ref;
	recon_put_check_bytes(&o->check, check);
	o->first_break = first_break;
}

/* An array of walk_row with the 16-byte alignment bal_dec needs. */
static walk_row *
recon_alloc_walk_rows(int64 n)
{
	char	   *raw = MemoryContextAllocHuge(CurrentMemoryContext,
											 sizeof(walk_row) * Max(n, 1) + 16);

	return (walk_row *) TYPEALIGN(16, raw);
}

/* Groups rows per user (counting sort) and walks each user's rows. */
static void
recon_walk_all(ReconState *st)
{
	uint32		nusers = st->users.n;
	int64	   *start = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * (nusers + 1));
	int64	   *fill = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * (nusers + 1));
	uint32	   *order = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(st->n, 1));
	int64		largest = 0;
	walk_row   *rows;
	int64		r;
	uint32		u;

	memset(start, 0, sizeof(int64) * (nusers + 1));
	for (r = 0; r < st->n; r++)
		start[st->user[r] + 1]++;
	for (u = 0; u < nusers; u++)
	{
		largest = Max(largest, start[u + 1]);
		start[u + 1] += start[u];
	}
	memcpy(fill, start, sizeof(int64) * (nusers + 1));
	for (r = 0; r < st->n; r++)
		order[fill[st->user[r]]++] = (uint32) r;

	rows = recon_alloc_walk_rows(largest);
	if (st->collect_totals)
		st->totals = report_totals_begin(st->currencies.n);
	st->tie_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon chain ties",
										ALLOCSET_SMALL_SIZES);
	for (u = 0; u < nusers; u++)
	{
		int64		lo = start[u];
		int64		n = start[u + 1] - lo;
		int64		k;

		CHECK_FOR_INTERRUPTS();
		for (k = 0; k < n; k++)
		{
			uint32		row = order[lo + k];
			uint8		flags = st->flags[row];
			walk_row   *w = &rows[k];

			w->amount = recon_get(&st->amount[row]);
			w->vat = recon_get(&st->vat[row]);
			w->old_balance = recon_get(&st->old_balance[row]);
			w->new_balance = recon_get(&st->new_balance[row]);
			w->tolerance = recon_get(&st->currencies.items[st->currency[row]].tolerance);
			w->logged_at = st->logged_at[row];
			w->txn_id = NULL;
			w->txn_id_len = 0;
			w->ref = row;
			w->type = (flags & RF_DEBIT) ? BAL_DEBIT : ((flags & RF_CREDIT) ? BAL_CREDIT : BAL_LEGACY);
			w->balances_valid = (flags & RF_BALANCES) != 0;
			w->amounts_valid = (flags & RF_AMOUNTS) != 0;
			w->new_balance_sign = (flags & RF_NEGATIVE) ? -1 : 1;
			w->new_vs_old_sign = (flags & RF_DOWN) ? -1 : 1;
			w->currency = st->currency[row];
		}
		walk_user(rows, (size_t) n, recon_walk_fetch, recon_walk_emit, st);
		if (st->collect_totals && n > 0)
			report_totals_add_user(st->totals, u, rows, (size_t) n);
		MemoryContextReset(st->tie_cxt);
	}
}

/* ---------------------------------------------------------------------
 * Writing the findings: COPY's multi-insert path (bulk_write_glue.h)
 * --------------------------------------------------------------------- */
static void
recon_write_findings(ReconState *st)
{
	BulkWriter *w;
	Relation	rel;
	AttrNumber	att_txn_id,
				att_user_id,
				att_finding,
				att_expected,
				att_actual,
				att_difference,
				att_tolerance,
				att_currency,
				att_logged_at,
				att_first_break;

	if (st->nout == 0)
		return;
	w = bulk_write_open_table(st->findings_table, "reconciliation findings");
	rel = bulk_write_relation(w);
	att_txn_id = recon_attnum(rel, "txn_id");
	att_user_id = recon_attnum(rel, "user_id");
	att_finding = recon_attnum(rel, "finding");
	att_expected = recon_attnum(rel, "expected");
	att_actual = recon_attnum(rel, "actual");
	att_difference = recon_attnum(rel, "difference");
	att_tolerance = recon_attnum(rel, "tolerance");
	att_currency = recon_attnum(rel, "currency");
	att_logged_at = recon_attnum(rel, "logged_at");
	att_first_break = recon_attnum(rel, "first_break");
	for (int64 done = 0; done < st->nout; done++)
	{
		OutFinding *o = &st->out[done];
		ReconCurrency *cur = &st->currencies.items[st->currency[o->row]];
		bal_check	check = recon_get_check(&o->check);
		/* the values are made in the batch's memory until bulk_write_end_row */
		TupleTableSlot *slot = bulk_write_begin_row(w);
		Datum	   *values = slot->tts_values;
		bool	   *nulls = slot->tts_isnull;

		if (done % 10000 == 0)
			CHECK_FOR_INTERRUPTS();
		values[att_txn_id - 1] = CStringGetTextDatum(recon_fetch_txn_id(st, o->row));
		values[att_user_id - 1] = PointerGetDatum(cstring_to_text_with_len(st->users.names[st->user[o->row]].name,
																			 st->users.names[st->user[o->row]].len));
		values[att_finding - 1] = CStringGetTextDatum(bal_finding_name(check.finding));
		if (check.finding != BAL_OUT_OF_RANGE)
		{
			values[att_expected - 1] = recon_dec_to_numeric(check.expected);
			values[att_actual - 1] = recon_dec_to_numeric(check.actual);
			values[att_difference - 1] = recon_dec_to_numeric(check.difference);
			nulls[att_expected - 1] = nulls[att_actual - 1] = nulls[att_difference - 1] = false;
		}
		values[att_tolerance - 1] = cur->tolerance_datum;
		values[att_currency - 1] = cur->code_datum;
		values[att_logged_at - 1] = TimestampTzGetDatum(st->logged_at[o->row]);
		values[att_first_break - 1] = BoolGetDatum(o->first_break);
		nulls[att_txn_id - 1] = nulls[att_user_id - 1] = nulls[att_finding - 1] = false;
		nulls[att_tolerance - 1] = nulls[att_currency - 1] = nulls[att_logged_at - 1] = false;
		nulls[att_first_break - 1] = false;
		bulk_write_end_row(w);
	}
	bulk_write_close(w);
}

/* ---------------------------------------------------------------------
 * Reading the transactions
 * --------------------------------------------------------------------- */
typedef struct ReconAtts
{
	AttrNumber	user_id,
				txn_type,
				currency,
				amount,
				vat,
				old_balance,
				new_balance,
				logged_at,
				max;
} ReconAtts;

/* A column the extension's own table must have (attnameAttNum, checked). */
AttrNumber
recon_attnum(Relation rel, const char *name)
{
	AttrNumber	a = attnameAttNum(rel, name, false);

	if (a == InvalidAttrNumber)
		elog(ERROR, "calo_recon.%s has no column \"%s\"", RelationGetRelationName(rel), name);
	return a;
}

static void
recon_scan_all(ReconState *st)
{
	ReconAtts	at;
	TableScanDesc scan;
	TupleTableSlot *slot;
	BlockNumber nblocks = RelationGetNumberOfBlocks(st->rel);
	int64		estimate;

	at.user_id = recon_attnum(st->rel, "user_id");
	at.txn_type = recon_attnum(st->rel, "txn_type");
	at.currency = recon_attnum(st->rel, "currency");
	at.amount = recon_attnum(st->rel, "amount");
	at.vat = recon_attnum(st->rel, "vat");
	at.old_balance = recon_attnum(st->rel, "old_balance");
	at.new_balance = recon_attnum(st->rel, "new_balance");
	at.logged_at = recon_attnum(st->rel, "logged_at");
	at.max = Max(Max(Max(at.user_id, at.txn_type), Max(at.currency, at.amount)),
				 Max(Max(at.vat, at.old_balance), Max(at.new_balance, at.logged_at)));

	/* size the arrays once from the table's tuple density, grow if needed */
	estimate = (int64) Max(st->rel->rd_rel->reltuples, 0)
		* (st->rel->rd_rel->relpages > 0 ? (double) nblocks / st->rel->rd_rel->relpages : 1.0);
	recon_rows_reserve(st, Max(estimate + estimate / 16, 1024));
	/* users are unknown until seen; start small (cache-friendly) and grow */
	name_index_init(&st->users, (uint32) Min(estimate / 64 + 1024, PG_INT32_MAX / 4));

	/* no synchronized scan: starting mid-table would rotate every user's rows */
	scan = table_beginscan_strat(st->rel, st->snapshot, 0, NULL, true, false);
	slot = table_slot_create(st->rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum	   *v;
		bool	   *isnull;

		slot_getsomeattrs(slot, at.max);
		v = slot->tts_values;
		isnull = slot->tts_isnull;
		if (isnull[at.user_id - 1] || isnull[at.currency - 1] || isnull[at.amount - 1]
			|| isnull[at.vat - 1] || isnull[at.old_balance - 1]
			|| isnull[at.new_balance - 1] || isnull[at.logged_at - 1])
			elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
		recon_consume(st, &slot->tts_tid, v[at.user_id - 1], v[at.txn_type - 1],
					  isnull[at.txn_type - 1], v[at.currency - 1], v[at.amount - 1],
					  v[at.vat - 1], v[at.old_balance - 1], v[at.new_balance - 1],
					  DatumGetTimestampTz(v[at.logged_at - 1]));
		if ((st->n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	recon_flush_users(st);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
}

/*
 * Rows through SPI: a few users' through transactions_user_chain_idx (the
 * planner's choice), or, for the figures computed live (st->txn_ids set:
 * no tid to fetch from, e.g. the coordinator of a Citus cluster), those of
 * the users given or all, logged in [from, to) when has_from/has_to.
 */
static void
recon_scan_query(ReconState *st, bool all_users, Datum user_ids, bool has_from,
				 TimestampTz from, bool has_to, TimestampTz to)
{
	Oid			argtypes[3] = {TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[3] = {user_ids, TimestampTzGetDatum(from), TimestampTzGetDatum(to)};
	char		nulls[3] = {all_users ? 'n' : ' ', has_from ? ' ' : 'n', has_to ? ' ' : 'n'};
	bool		read_txn_ids = st->scan_txn_ids;
	int			ncols = read_txn_ids ? 10 : 9;
	int64		txn_ids_cap = read_txn_ids ? 1024 : 0;
	SPIPlanPtr	plan;
	Portal		portal;

	recon_rows_reserve(st, 1024);
	name_index_init(&st->users, 64);
	if (read_txn_ids)
		st->txn_ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(char *) * txn_ids_cap);
	/* with txn_id read, no tid is fetched: ctid (not one on a cluster) is not read */
	plan = SPI_prepare(psprintf("SELECT %s, user_id, txn_type, currency, amount, vat, old_balance, "
								"new_balance, logged_at%s FROM %s WHERE true%s%s%s",
								read_txn_ids ? "'(0,0)'::pg_catalog.tid" : "ctid",
								read_txn_ids ? ", txn_id" : "", st->txn_table,
								all_users ? "" : " AND user_id OPERATOR(pg_catalog.=) ANY ($1)",
								has_from ? " AND logged_at OPERATOR(pg_catalog.>=) $2" : "",
								has_to ? " AND logged_at OPERATOR(pg_catalog.<) $3" : ""),
					   3, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	/* read_only: the cursor runs on the active snapshot, as the tid fetches do */
	portal = SPI_cursor_open(NULL, plan, args, nulls, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		v[10];
			bool		isnull[10];
			int			c;

			heap_deform_tuple(tup, desc, v, isnull);
			for (c = 0; c < ncols; c++)
				if (isnull[c] && c != 2)
					elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
			if (read_txn_ids)
			{
				if (st->n == txn_ids_cap)
				{
					txn_ids_cap *= 2;
					st->txn_ids = repalloc_huge(st->txn_ids, sizeof(char *) * txn_ids_cap);
				}
				st->txn_ids[st->n] = TextDatumGetCString(v[9]);
			}
			recon_consume(st, (ItemPointer) DatumGetPointer(v[0]), v[1], v[2], isnull[2], v[3],
						  v[4], v[5], v[6], v[7], DatumGetTimestampTz(v[8]));
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	recon_flush_users(st);
	SPI_cursor_close(portal);
}

/*
 * The users reconciled here leave calo_recon.pending_reconcile (README
 * "Scheduled refresh"): their entries are deleted with the snapshot their rows
 * are read with, so an entry whose transaction this call cannot see stays for
 * the next reconciliation.
 */
static void
recon_drain_queue(const char *queue_table, Snapshot snapshot, bool all_users, Datum user_ids)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {user_ids};
	SPIPlanPtr	plan;

	plan = SPI_prepare(all_users ? psprintf("DELETE FROM %s", queue_table)
					   : psprintf("DELETE FROM %s WHERE user_id OPERATOR(pg_catalog.=) ANY ($1)",
								  queue_table),
					   all_users ? 0 : 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, all_users ? NULL : args, NULL, snapshot, InvalidSnapshot,
							 false, true, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drain calo_recon.pending_reconcile");
	SPI_freeplan(plan);
}

/* What recon_sync_alerts raises from (recon_previous_breaks). */
typedef struct PrevBreaks
{
	bool		raise;			/* raise the alerts of new or changed breaks */
	Datum		breaks[4];		/* the previous break findings: txn_id, user_id, finding, detail */
	char		nulls[4];
	Datum		loud_users;		/* the users queued with calo_recon.alerts on */
} PrevBreaks;

/* the open alerts of the kinds a finding supports, of the users $1 (NULL: all) */
#define OPEN_BREAK_ALERTS_OF_USERS \
	" a.resolved_at IS NULL " \
	" AND calo_recon.is_break(a.alert_kind) " \
	" AND ($1 IS NULL OR a.user_id OPERATOR(pg_catalog.=) ANY ($1)) "

/*
 * The resolution of an alert reconcile() no longer supports: this text, then
 * why (the CASE that follows it)
 */
#define RESOLVED_BY_RECONCILE \
	"'not supported by reconcile() at ' " \
	"OPERATOR(pg_catalog.||) pg_catalog.now()::pg_catalog.text OPERATOR(pg_catalog.||) "

/* where the transactions of the txn ids $1 are stored now: (txn_id, user_id) arrays */
#define STORED_TXN_IDS \
	"SELECT pg_catalog.array_agg(t.txn_id), pg_catalog.array_agg(t.user_id) " \
	"FROM calo_recon.transactions t WHERE t.txn_id IN (SELECT pg_catalog.unnest($1))"

/*
 * The reasons of an alert whose transaction went away, as branches of that
 * CASE: txn_ids and user_ids are the parameters holding where the alerts'
 * transactions are stored now
 */
#define ROW_GONE_RESOLUTIONS(txn_ids, user_ids) \
	" WHEN NOT EXISTS (SELECT FROM unnest(" txn_ids ", " user_ids ") AS s (txn_id, user_id) " /* multi-argument form: unqualified */ \
	"                  WHERE s.txn_id OPERATOR(pg_catalog.=) a.txn_id) " \
	" THEN ': the transaction is no longer stored' " \
	" WHEN NOT EXISTS (SELECT FROM unnest(" txn_ids ", " user_ids ") AS s (txn_id, user_id) " \
	"                  WHERE s.txn_id OPERATOR(pg_catalog.=) a.txn_id " \
	"                    AND s.user_id OPERATOR(pg_catalog.=) a.user_id) " \
	" THEN ': the transaction is now another user''s' "

/* the break findings of the users $1 (NULL: all), with the detail of their alerts */
#define BREAK_FINDINGS_OF_USERS \
	"SELECT pg_catalog.array_agg(f.txn_id), pg_catalog.array_agg(f.user_id), " \
	"       pg_catalog.array_agg(f.finding), " \
	"       pg_catalog.array_agg(calo_recon.break_alert_detail(f.expected, f.actual, f.difference, " \
	"                                                          f.tolerance, f.currency)) " \
	"FROM calo_recon.reconciliation_findings f " \
	"WHERE calo_recon.is_break(f.finding) " \
	"  AND ($1 IS NULL OR f.user_id OPERATOR(pg_catalog.=) ANY ($1))"

/*
 * Runs a query of one row and keeps its columns, copied out of SPI's memory
 * (NULL arrays when it aggregated nothing) in args and nulls (' ' or 'n').
 */
static void
recon_query_row(const char *query, int nargs, Oid *argtypes, Datum *args, const char *nulls,
				Snapshot snapshot, int ncols, Datum *out, char *out_nulls)
{
	SPIPlanPtr	plan;
	int			c;

	plan = SPI_prepare(query, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, args, nulls, snapshot, InvalidSnapshot,
							 false, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the alerts of calo_recon.alerts against the findings");
	for (c = 0; c < ncols; c++)
	{
		bool		isnull;
		Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, c);
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);

		out[c] = isnull ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
		out_nulls[c] = isnull ? 'n' : ' ';
	}
	SPI_freetuptable(SPI_tuptable);
	SPI_freeplan(plan);
}

/*
 * What reconcile() needs to raise alerts after its walk (README "Real-time
 * alerts"): whether it raises any (calo_recon.alerts on, and the alerts and
 * their functions installed: not at 1.0 or 1.1); the users it raises for:
 * those with an entry in pending_reconcile queued while alerts were on, read
 * with the snapshot recon_drain_queue deletes them with (a user queued only
 * by a load with alerts off, or not queued, raises nothing); and the break
 * findings the previous reconciliation of the users left, read before they
 * are replaced.  A break found before raises no alert again unless it
 * changed: one resolved by hand stays resolved, and one recorded while
 * alerts were off stays quiet.
 */
static void
recon_previous_breaks(PrevBreaks *prev, bool all_users, Datum user_ids)
{
	Oid			nsp = get_namespace_oid("calo_recon", false);
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {user_ids};
	char		nulls[1] = {all_users ? 'n' : ' '};

	memset(prev, 0, sizeof(*prev));
	if (!calo_recon_alerts_enabled || !OidIsValid(get_relname_relid("alerts", nsp)))
		return;
	if (SPI_execute("SELECT pg_catalog.to_regproc('calo_recon.raise_transaction_alerts') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look up calo_recon.raise_transaction_alerts");
	{
		bool		isnull;

		prev->raise = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
	if (!prev->raise)
		return;
	{
		char		loud_null;

		recon_query_row("SELECT pg_catalog.array_agg(DISTINCT p.user_id) "
						"FROM calo_recon.pending_reconcile p "
						"WHERE p.alerts AND ($1 IS NULL OR p.user_id OPERATOR(pg_catalog.=) ANY ($1))",
						1, argtypes, args, nulls, GetActiveSnapshot(), 1, &prev->loud_users, &loud_null);
		if (loud_null == 'n')
		{
			prev->raise = false;
			return;
		}
	}
	recon_query_row(BREAK_FINDINGS_OF_USERS, 1, argtypes, args, nulls, InvalidSnapshot,
					4, prev->breaks, prev->nulls);
}

/* An UPDATE of calo_recon.alerts that resolves some, run with the reconciliation's snapshot */
static void
recon_resolve_alerts(const char *update, int nargs, Oid *argtypes, Datum *args, const char *nulls,
					 Snapshot snapshot)
{
	SPIPlanPtr	plan = SPI_prepare(update, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, args, nulls, snapshot, InvalidSnapshot,
							 false, true, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not resolve the alerts of calo_recon.alerts");
	SPI_freeplan(plan);
}

/*
 * The open alerts of the users' transactions that are no longer stored (a
 * DELETE, or an UPDATE that moved the id to another user) and that no break
 * finding resolves: an overdraft, amount-rule or model alert, raised at
 * insert for one row.  Resolved, saying why, as recon_sync_alerts resolves
 * a break that went away.  The kinds are those alert_kinds says are raised
 * at insert, less the breaks (recon_sync_alerts' own).
 */
static void
recon_resolve_alerts_of_gone_rows(Snapshot snapshot, bool all_users, Datum user_ids)
{
	Oid			argtypes[3] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[3];
	char		nulls[3];
	Datum		open[2];		/* the open alerts' ids and txn ids */
	char		open_nulls[2];
	Datum		stored[2];		/* the stored (txn_id, user_id) of those txn ids */
	char		stored_nulls[2];

	args[0] = user_ids;
	nulls[0] = all_users ? 'n' : ' ';
	recon_query_row("SELECT pg_catalog.array_agg(a.alert_id), pg_catalog.array_agg(a.txn_id) "
					"FROM calo_recon.alerts a "
					"WHERE a.resolved_at IS NULL AND a.txn_id IS NOT NULL "
					"  AND NOT calo_recon.is_break(a.alert_kind) "
					"  AND a.alert_kind IN (SELECT k.alert_kind FROM calo_recon.alert_kinds k "
					"                       WHERE k.raised_by OPERATOR(pg_catalog.=) 'insert') "
					"  AND ($1 IS NULL OR a.user_id OPERATOR(pg_catalog.=) ANY ($1))",
					1, argtypes, args, nulls, snapshot, 2, open, open_nulls);
	if (open_nulls[0] != ' ')
		return;
	recon_query_row(STORED_TXN_IDS,
					1, argtypes, &open[1], &open_nulls[1], snapshot, 2, stored, stored_nulls);
	args[0] = open[0];
	nulls[0] = ' ';
	args[1] = stored[0];
	nulls[1] = stored_nulls[0];
	args[2] = stored[1];
	nulls[2] = stored_nulls[1];
	argtypes[0] = INT8ARRAYOID;
	recon_resolve_alerts("UPDATE calo_recon.alerts a "
					   "SET resolved_at = pg_catalog.now(), "
					   "    resolution = " RESOLVED_BY_RECONCILE " CASE "
					   ROW_GONE_RESOLUTIONS("$2", "$3") " END "
					   "WHERE a.alert_id OPERATOR(pg_catalog.=) ANY ($1) "
					   "  AND NOT EXISTS (SELECT FROM unnest($2, $3) AS s (txn_id, user_id) "	/* multi-argument form: unqualified */
					   "                  WHERE s.txn_id OPERATOR(pg_catalog.=) a.txn_id "
					   "                    AND s.user_id OPERATOR(pg_catalog.=) a.user_id)", 3, argtypes, args, nulls, snapshot);
}

/*
 * The open arithmetic, chain and out_of_range alerts of the reconciled users
 * follow the findings just written (README "Real-time alerts"): an alert the
 * findings do not support (no such break, or one with another detail, or of
 * a transaction no longer stored for that user) is resolved, saying why; and
 * when prev->raise, a break that no open alert carries, new or changed since
 * the previous reconciliation (prev) or replacing an open alert with a stale
 * detail, is raised through the insert of the insert-time check
 * (raise_transaction_alerts: not for rows logged before the backfill age)
 * with its NOTIFY (notify_alerts).  Read with the reconciliation's snapshot,
 * as recon_drain_queue: an alert of a transaction this call could not see
 * stays open.  A database at version 1.0 has no alerts table.
 *
 * Every query is of one table and arrays, or the alerts with arrays, so
 * that a Citus cluster (alerts on the coordinator, the findings in shards)
 * plans them too.  Not read_only: SPI advances the command id, so the
 * findings written are seen.
 */
static void
recon_sync_alerts(Snapshot snapshot, bool all_users, Datum user_ids, Oid nsp, const PrevBreaks *prev)
{
	Oid			argtypes[8] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[8];
	char		nulls[8];
	Datum		cur[4];			/* the break findings: txn_id, user_id, finding, detail */
	char		cur_nulls[4];
	Datum		raise[5];		/* what to raise: txn_id, user_id, kind, detail, rank */
	char		raise_nulls[5] = {'n', 'n', 'n', 'n', 'n'};
	Datum		open[3];		/* supported ids, ids whose detail changed, txn ids not found */
	char		open_nulls[3];
	Datum		stored[2] = {0, 0}; /* the stored (txn_id, user_id) of those txn ids */
	char		stored_nulls[2] = {'n', 'n'};
	char		users_null = all_users ? 'n' : ' ';
	int			c;

	if (!OidIsValid(get_relname_relid("alerts", nsp)))
		return;
	args[0] = user_ids;
	nulls[0] = users_null;
	recon_query_row(BREAK_FINDINGS_OF_USERS, 1, argtypes, args, nulls, snapshot, 4, cur, cur_nulls);
	for (c = 0; c < 4; c++)
	{
		args[1 + c] = cur[c];
		nulls[1 + c] = cur_nulls[c];
	}

	/* what to raise, read before the stale alerts are resolved */
	if (prev != NULL && prev->raise && cur_nulls[0] == ' ')
	{
		Oid			raise_types[9] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID};
		Datum		raise_args[9];
		char		raise_args_nulls[9];

		for (c = 0; c < 4; c++)
		{
			raise_args[c] = cur[c];
			raise_args_nulls[c] = cur_nulls[c];
			raise_args[4 + c] = prev->breaks[c];
			raise_args_nulls[4 + c] = prev->nulls[c];
		}
		raise_args[8] = prev->loud_users;
		raise_args_nulls[8] = ' ';
		/*
		 * The open alert of each break (at most one per transaction and kind)
		 * by the open alerts' index, break by break: an open alert of another
		 * break would make the planner hash every open alert.
		 */
		recon_query_row("SELECT pg_catalog.array_agg(c.txn_id), pg_catalog.array_agg(c.user_id), "
						"       pg_catalog.array_agg(c.finding), pg_catalog.array_agg(c.detail), "
						"       pg_catalog.array_agg(calo_recon.finding_rank(c.finding)) "
						"FROM unnest($1, $2, $3, $4) AS c (txn_id, user_id, finding, detail) "	/* multi-argument form: unqualified */
						"LEFT JOIN LATERAL (SELECT a.alert_id, a.user_id, a.detail FROM calo_recon.alerts a "
						"                   WHERE a.txn_id OPERATOR(pg_catalog.=) c.txn_id "
						"                     AND a.alert_kind OPERATOR(pg_catalog.=) c.finding "
						"                     AND a.resolved_at IS NULL "
						"                   LIMIT 1) o ON true "
						"WHERE c.user_id OPERATOR(pg_catalog.=) ANY ($9) "
						/* no open alert carries it */
						"  AND (o.alert_id IS NULL OR o.user_id IS DISTINCT FROM c.user_id "
						"       OR o.detail OPERATOR(pg_catalog.<>) c.detail) "
						/* and it replaces an open alert with a stale detail, or is new or changed since the previous reconciliation */
						"  AND (o.alert_id IS NOT NULL "
						"       OR NOT EXISTS (SELECT FROM unnest($5, $6, $7, $8) AS p (txn_id, user_id, finding, detail) "
						"                      WHERE p.txn_id OPERATOR(pg_catalog.=) c.txn_id "
						"                        AND p.user_id OPERATOR(pg_catalog.=) c.user_id "
						"                        AND p.finding OPERATOR(pg_catalog.=) c.finding "
						"                        AND p.detail OPERATOR(pg_catalog.=) c.detail))",
						9, raise_types, raise_args, raise_args_nulls, snapshot, 5, raise, raise_nulls);
	}

	/* the open alerts the findings support, those whose detail changed, and the others' txn ids */
	argtypes[4] = JSONBARRAYOID;
	recon_query_row("SELECT pg_catalog.array_agg(o.alert_id) FILTER (WHERE c.detail OPERATOR(pg_catalog.=) o.detail), "
					"       pg_catalog.array_agg(o.alert_id) FILTER (WHERE c.detail OPERATOR(pg_catalog.<>) o.detail), "
					"       pg_catalog.array_agg(o.txn_id) FILTER (WHERE c.txn_id IS NULL) "
					"FROM (SELECT a.alert_id, a.txn_id, a.user_id, a.alert_kind, a.detail "
					"      FROM calo_recon.alerts a WHERE " OPEN_BREAK_ALERTS_OF_USERS ") o "
					"LEFT JOIN unnest($2, $3, $4, $5) AS c (txn_id, user_id, finding, detail) "	/* multi-argument form: unqualified */
					"  ON c.txn_id OPERATOR(pg_catalog.=) o.txn_id "
					" AND c.user_id OPERATOR(pg_catalog.=) o.user_id "
					" AND c.finding OPERATOR(pg_catalog.=) o.alert_kind",
					5, argtypes, args, nulls, snapshot, 3, open, open_nulls);

	/* where the transactions of the alerts without a finding are stored now */
	if (open_nulls[2] == ' ')
		recon_query_row(STORED_TXN_IDS,
						1, argtypes, &open[2], &open_nulls[2], snapshot, 2, stored, stored_nulls);

	args[1] = open_nulls[0] == ' ' ? open[0] : PointerGetDatum(construct_empty_array(INT8OID));
	nulls[1] = ' ';
	args[2] = open[1];
	nulls[2] = open_nulls[1];
	args[3] = stored[0];
	nulls[3] = stored_nulls[0];
	args[4] = stored[1];
	nulls[4] = stored_nulls[1];
	argtypes[1] = INT8ARRAYOID;
	argtypes[2] = INT8ARRAYOID;
	argtypes[4] = TEXTARRAYOID;
	recon_resolve_alerts("UPDATE calo_recon.alerts a "
					   "SET resolved_at = pg_catalog.now(), "
					   "    resolution = " RESOLVED_BY_RECONCILE " CASE "
					   "        WHEN a.alert_id OPERATOR(pg_catalog.=) ANY ($3) "
					   "        THEN ': the break''s detail changed (expected, actual, difference or tolerance)' "
					   ROW_GONE_RESOLUTIONS("$4", "$5")
					   "        ELSE ': no such break any more' END "
					   "WHERE " OPEN_BREAK_ALERTS_OF_USERS
					   "  AND a.alert_id NOT IN (SELECT pg_catalog.unnest($2))", 5, argtypes, args, nulls, snapshot);

	/* then the missing ones, with the insert-time check's insert and NOTIFY */
	if (raise_nulls[0] == ' ')
	{
		Oid			raise_types[5] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INT4ARRAYOID};

		if (SPI_execute_with_args("SELECT calo_recon.notify_alerts(r.alert_ids, r.raised_kinds), "
								  "       pg_catalog.cardinality(r.alert_ids) "
								  "FROM calo_recon.raise_transaction_alerts($1, $2, $3, $4, $5) r",
								  5, raise_types, raise, raise_nulls, false, 1) != SPI_OK_SELECT
			|| SPI_processed != 1)
			elog(ERROR, "could not raise the alerts of the findings of reconcile()");
		SPI_freetuptable(SPI_tuptable);
	}

	recon_resolve_alerts_of_gone_rows(snapshot, all_users, user_ids);
}

/* ---------------------------------------------------------------------
 * Report totals (report_totals_glue.h): what their rows name, and the
 * figures of user_figures() and the like, computed now
 * --------------------------------------------------------------------- */
static Datum
recon_totals_user_id(void *ctx, uint32 user)
{
	ReconState *st = (ReconState *) ctx;

	return PointerGetDatum(cstring_to_text_with_len(st->users.names[user].name,
													st->users.names[user].len));
}

static Datum
recon_totals_currency(void *ctx, uint32 currency)
{
	return ((ReconState *) ctx)->currencies.items[currency].code_datum;
}

static char *
recon_totals_txn_id(void *ctx, int64 ref)
{
	return recon_fetch_txn_id((ReconState *) ctx, ref);
}

static void
recon_totals_names(ReconState *st, ReportTotalsNames *names)
{
	names->ctx = st;
	names->user_id = recon_totals_user_id;
	names->currency = recon_totals_currency;
	names->txn_id = recon_totals_txn_id;
}

ReportTotals *
recon_live_totals(bool all_users, Datum user_ids, bool has_from, TimestampTz from,
				  bool has_to, TimestampTz to, ReportTotalsNames *names)
{
	ReconState *st = palloc0(sizeof(ReconState));

	st->txn_table = "calo_recon.transactions";
	st->collect_totals = true;
	st->scan_txn_ids = true;
	/*
	 * The figures need the currencies' codes only, not their tolerances (the
	 * walk's findings are not kept here): calo_recon.currencies is not read,
	 * so a reader of the views needs no right on it.
	 */
	recon_no_currencies(&st->currencies);
	recon_scan_query(st, all_users, user_ids, has_from, from, has_to, to);
	recon_walk_all(st);
	recon_totals_names(st, names);
	return st->totals;
}

/*
 * One reconciliation of the given users (all when all_users) over the given
 * tables: the extension's own, or on a Citus worker the shards of one shard
 * group.  The caller is connected to SPI and holds the writer lock (on a
 * worker, the coordinator's caller does); the six counts go to result.
 */
static void
recon_run(Oid txn_relid, const char *txn_table, const char *findings_table,
		  const char *queue_table, const char *currencies_table, const TotTables *totals,
		  bool all_users, Datum user_ids, const PrevBreaks *alerts, Datum *result)
{
	ReconState	st;
	TimestampTz t0,
				t1,
				t2,
				t3,
				t4;

	memset(&st, 0, sizeof(st));
	st.txn_table = txn_table;
	st.findings_table = findings_table;
	st.collect_totals = totals != NULL;
	if (SPI_execute(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", findings_table),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock %s", findings_table);
	recon_load_currencies(&st.currencies, currencies_table);
	if (all_users)
	{
		if (SPI_execute(psprintf("DELETE FROM %s", findings_table), false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not clear %s", findings_table);
	}
	else
	{
		Oid			argtypes[1] = {TEXTARRAYOID};
		Datum		args[1] = {user_ids};

		if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE user_id OPERATOR(pg_catalog.=) ANY ($1)",
										   findings_table), 1, argtypes, args, NULL,
								  false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not clear %s", findings_table);
	}

	st.rel = table_open(txn_relid, AccessShareLock);
	st.snapshot = GetActiveSnapshot();
	recon_drain_queue(queue_table, st.snapshot, all_users, user_ids);
	st.fetch_slot = table_slot_create(st.rel, NULL);
	st.att_txn_id = recon_attnum(st.rel, "txn_id");

	t0 = GetCurrentTimestamp();
	if (all_users)
		recon_scan_all(&st);
	else
		recon_scan_query(&st, false, user_ids, false, 0, false, 0);
	t1 = GetCurrentTimestamp();
	recon_walk_all(&st);
	t2 = GetCurrentTimestamp();
	recon_write_findings(&st);
	t3 = GetCurrentTimestamp();
	if (totals != NULL)
	{
		ReportTotalsNames names;

		recon_totals_names(&st, &names);
		report_totals_write(st.totals, &names, totals, all_users, user_ids);
	}
	t4 = GetCurrentTimestamp();
	if (alerts != NULL)
		recon_sync_alerts(st.snapshot, all_users, user_ids,
						  get_namespace_oid("calo_recon", false), alerts);
	elog(DEBUG1, "calo_recon.reconcile: read %lld rows in %ld ms, walked in %ld ms, wrote %lld findings in %ld ms, "
		 "%lld report totals rows in %ld ms, synced alerts in %ld ms",
		 (long long) st.n, (long) ((t1 - t0) / 1000), (long) ((t2 - t1) / 1000),
		 (long long) st.nout, (long) ((t3 - t2) / 1000),
		 (long long) (st.totals != NULL ? report_totals_rows(st.totals) : 0), (long) ((t4 - t3) / 1000),
		 (long) ((GetCurrentTimestamp() - t4) / 1000));

	ExecDropSingleTupleTableSlot(st.fetch_slot);
	table_close(st.rel, AccessShareLock);
	if (st.out_of_range > 0)
		ereport(WARNING,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%lld transactions hold values outside the exact range of the reconciliation",
						(long long) st.out_of_range),
				 errdetail("They are reported as break_kind out_of_range in calo_recon.balance_breaks."),
				 errhint("Balances must be below 10^20 in magnitude with at most 18 decimal places.")));

	result[0] = Int64GetDatum(st.users.n);
	result[1] = Int64GetDatum(st.n);
	result[2] = Int64GetDatum(st.arithmetic_breaks);
	result[3] = Int64GetDatum(st.chain_breaks);
	result[4] = Int64GetDatum(st.drift);
	result[5] = Int64GetDatum(st.overdrafts);
}

/*
 * On a Citus cluster (README "Scaling out with Citus"): one query over
 * calo_recon.shard_anchors runs reconcile_placement() once per shard group,
 * on the node of its placements, in parallel and in this transaction; the
 * counts are summed.  The alerts stay on the coordinator: the ones the
 * findings no longer support are resolved here, after every shard group.
 */
static void
recon_run_distributed(bool all_users, Datum user_ids, const PrevBreaks *alerts, Datum *result)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {user_ids};
	char		nulls[1] = {all_users ? 'n' : ' '};
	int			c;

	if (SPI_execute_with_args("SELECT pg_catalog.sum(r[1])::pg_catalog.int8, pg_catalog.sum(r[2])::pg_catalog.int8, "
							  "       pg_catalog.sum(r[3])::pg_catalog.int8, pg_catalog.sum(r[4])::pg_catalog.int8, "
							  "       pg_catalog.sum(r[5])::pg_catalog.int8, pg_catalog.sum(r[6])::pg_catalog.int8 "
							  "FROM (SELECT calo_recon.reconcile_placement(a.tableoid, $1) AS r "
							  "      FROM calo_recon.shard_anchors a) p",
							  1, argtypes, args, nulls, false, 0) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "could not reconcile the shards of calo_recon.transactions");
	for (c = 0; c < 6; c++)
	{
		bool		isnull;

		result[c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);
		if (isnull)
			result[c] = Int64GetDatum(0);
	}
	recon_sync_alerts(GetActiveSnapshot(), all_users, user_ids, get_namespace_oid("calo_recon", false), alerts);
}

/*
 * calo_recon.reconcile(user_ids text[] DEFAULT NULL)
 *   RETURNS TABLE (users, transactions, arithmetic_breaks, chain_breaks, drift, overdrafts)
 */
Datum
calo_recon_reconcile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		all_users = PG_ARGISNULL(0);
	Datum		user_ids = all_users ? (Datum) 0 : PG_GETARG_DATUM(0);
	Oid			relid;
	Datum		result[6];
	bool		result_nulls[6] = {false, false, false, false, false, false};
	bool		has_totals;
	PrevBreaks	prev;
	Datum		day_keys[2] = {0, 0};
	static const TotTables local_totals = {"calo_recon.user_totals", "calo_recon.user_day_totals",
	"calo_recon.overdraft_episode_totals"};

	InitMaterializedSRF(fcinfo, 0);
	/* 1.0 has no alerts to resolve; 1.1 has them, but not is_break() */
	calo_refuse_v11("reconcile",
					"Since 1.2 a reconciliation resolves the open alerts its findings no longer support, with calo_recon.is_break(), which 1.1 does not have.");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * One reconciliation at a time; readers of the findings are not blocked.
	 * The writer lock comes first, as in every ingest (locks.h): an ingest
	 * ends with a reconcile, so taking the findings lock first could deadlock.
	 */
	calo_lock_writer();
	relid = get_relname_relid("transactions", get_namespace_oid("calo_recon", false));
	if (!OidIsValid(relid))
		elog(ERROR, "table calo_recon.transactions does not exist");
	has_totals = report_totals_installed();
	if (has_totals && !all_users)
		report_totals_day_keys(user_ids, day_keys);
	recon_previous_breaks(&prev, all_users, user_ids);
	if (calo_citus_is_distributed(relid))
		recon_run_distributed(all_users, user_ids, &prev, result);
	else
		recon_run(relid, "calo_recon.transactions", "calo_recon.reconciliation_findings",
				  "calo_recon.pending_reconcile", "calo_recon.currencies",
				  has_totals ? &local_totals : NULL, all_users, user_ids, &prev, result);
	if (has_totals)
		report_totals_store_days(all_users, user_ids, day_keys);
	SPI_finish();
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, result, result_nulls);
	return (Datum) 0;
}

/*
 * calo_recon.reconcile_placement(anchor_shard oid, user_ids text[])
 *   RETURNS bigint[] (the six counts of reconcile())
 * reconcile() on the shards of one shard group, on the node that holds them
 * (called by recon_run_distributed's query with the anchor shard's tableoid).
 */
Datum
calo_recon_reconcile_placement(PG_FUNCTION_ARGS)
{
	Oid			anchor = PG_GETARG_OID(0);
	bool		all_users = PG_ARGISNULL(1);
	Datum		user_ids = all_users ? (Datum) 0 : PG_GETARG_DATUM(1);
	Datum		result[6];
	char	   *txn_table;
	char	   *findings_table;
	char	   *queue_table;
	char	   *users_table;
	char	   *days_table;
	char	   *episodes_table;
	TotTables	totals;
	bool		has_totals;
	Oid			txn_relid;
	ArrayType  *counts;
	MemoryContext caller = CurrentMemoryContext;

	/*
	 * No writer lock here: the coordinator holds it for the whole run, and
	 * the placements of one node are worked by several connections of the
	 * same distributed transaction, which would wait on each other.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	txn_relid = calo_citus_colocated_shard(anchor, "transactions", &txn_table);
	(void) calo_citus_colocated_shard(anchor, "reconciliation_findings", &findings_table);
	(void) calo_citus_colocated_shard(anchor, "pending_reconcile", &queue_table);
	if (!OidIsValid(txn_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %s has no placement on this node", txn_table)));
	/* the report totals' shards, colocated (citus_layout); none at 1.0 or 1.1 */
	has_totals = report_totals_installed();
	if (has_totals)
	{
		(void) calo_citus_colocated_shard(anchor, "user_totals", &users_table);
		(void) calo_citus_colocated_shard(anchor, "user_day_totals", &days_table);
		(void) calo_citus_colocated_shard(anchor, "overdraft_episode_totals", &episodes_table);
		totals.users = users_table;
		totals.days = days_table;
		totals.episodes = episodes_table;
	}
	recon_run(txn_relid, txn_table, findings_table, queue_table,
			  calo_citus_reference_shard("currencies"), has_totals ? &totals : NULL,
			  all_users, user_ids, NULL, result);
	MemoryContextSwitchTo(caller);
	counts = construct_array(result, 6, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	SPI_finish();
	PG_RETURN_ARRAYTYPE_P(counts);
}

/* ---------------------------------------------------------------------
 * calo_recon.check_transaction: one row against its predecessor
 * --------------------------------------------------------------------- */
static int
recon_lookup_minor_unit(Datum currency)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {currency};
	int			minor = BAL_DEFAULT_MINOR_UNIT;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT minor_unit FROM calo_recon.currencies WHERE code OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.currencies");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		m = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			minor = DatumGetInt16(m);
	}
	SPI_finish();
	return minor;
}

typedef struct CheckOutput
{
	ReturnSetInfo *rsinfo;
	Datum		new_balance;	/* the overdraft is reported with the value as given */
} CheckOutput;

static void
recon_check_emit(void *ctx, const walk_row *row, const bal_check *c, bool first_break)
{
	CheckOutput *out = (CheckOutput *) ctx;
	Datum		v[5];
	bool		n[5] = {false, false, false, false, false};

	v[0] = CStringGetTextDatum(bal_finding_name(c->finding));
	if (c->finding == BAL_OVERDRAFT)
	{
		n[1] = n[3] = n[4] = true;
		v[2] = out->new_balance;
	}
	else
	{
		if (c->finding == BAL_OUT_OF_RANGE)
			n[1] = n[2] = n[3] = true;
		else
		{
			v[1] = recon_dec_to_numeric(c->expected);
			v[2] = recon_dec_to_numeric(c->actual);
			v[3] = recon_dec_to_numeric(c->difference);
		}
		v[4] = recon_dec_to_numeric(row->tolerance);
	}
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, v, n);
}

static bal_type
recon_type_arg(FunctionCallInfo fcinfo, int argno)
{
	return recon_type_from_text(PG_ARGISNULL(argno) ? (Datum) 0 : PG_GETARG_DATUM(argno),
								PG_ARGISNULL(argno), ERRCODE_INVALID_PARAMETER_VALUE);
}

/*
 * calo_recon.check_transaction(txn_type, currency, amount, vat, old_balance,
 *                              new_balance, prev_new_balance)
 * One step of the walk, after a predecessor whose new_balance is given.
 */
Datum
calo_recon_check_transaction(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	walk_row   *row = recon_alloc_walk_rows(1);
	bal_walk	state;
	CheckOutput out;
	int			i;
	static const char *const names[4] = {"amount", "vat", "old_balance", "new_balance"};

	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i + 2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", names[i])));
	memset(row, 0, sizeof(*row));
	row->type = recon_type_arg(fcinfo, 0);
	InitMaterializedSRF(fcinfo, 0);
	row->tolerance = bal_tolerance(PG_ARGISNULL(1) ? BAL_DEFAULT_MINOR_UNIT
								   : recon_lookup_minor_unit(PG_GETARG_DATUM(1)));
	row->amounts_valid = recon_decode_numeric(PG_GETARG_DATUM(2), &row->amount) == BAL_OK
		&& recon_decode_numeric(PG_GETARG_DATUM(3), &row->vat) == BAL_OK;
	row->balances_valid = recon_decode_numeric(PG_GETARG_DATUM(4), &row->old_balance) == BAL_OK
		&& recon_decode_numeric(PG_GETARG_DATUM(5), &row->new_balance) == BAL_OK;
	if (!row->balances_valid)
		row->new_balance_sign = (int8) (recon_numeric_sign(PG_GETARG_DATUM(5)) < 0 ? -1 : 1);

	if (PG_ARGISNULL(6))
		bal_walk_init(&state);
	else
	{
		bal_dec		prev = 0;
		bool		prev_valid = recon_decode_numeric(PG_GETARG_DATUM(6), &prev) == BAL_OK;

		walk_seed(&state, prev_valid, prev);
	}
	out.rsinfo = rsinfo;
	out.new_balance = PG_GETARG_DATUM(5);
	walk_step(&state, row, recon_check_emit, &out);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * calo_recon.chain_findings(txn_ids text[]): the insert-time check
 *
 * The findings the walk makes of the given transactions and of the stored
 * rows after them, each row against its predecessor in chain order among the
 * stored rows: per user, the rows from the last instant before the earliest
 * given row onwards are walked.  Every row from that earliest given row's
 * instant on is re-checked, since a row that arrived out of order is the new
 * predecessor of a stored one; a re-checked stored row without findings
 * still gives one row (finding NULL), so that the caller knows it was
 * re-checked and can resolve its alerts.
 * --------------------------------------------------------------------- */
typedef struct ChainFindings
{
	ReturnSetInfo *rsinfo;
	NameIndex	wanted;			/* the given txn_ids, hashed */
	int			nwanted;
	ReconCurrencies currencies;
	walk_row   *rows;
	int64		nrows;
	int64		caprows;
	uint16	   *currency_of;	/* by walk_row.ref */
	const char **user_of;
	bool	   *rechecked;		/* at or after the user's earliest given row */
	bool		row_found;		/* the current row has had a finding */
	MemoryContext user_cxt;
} ChainFindings;

/* Whether the row is one of the given (new) rows. */
static bool
recon_chain_is_wanted(const ChainFindings *cf, const walk_row *row)
{
	return name_index_find(&cf->wanted, row->txn_id, (int) row->txn_id_len) >= 0;
}

static void
recon_chain_emit(void *ctx, const walk_row *row, const bal_check *c, bool first_break)
{
	ChainFindings *cf = (ChainFindings *) ctx;
	Datum		v[9];
	bool		n[9] = {false, false, false, false, false, false, false, false, false};
	ReconCurrency *cur = &cf->currencies.items[cf->currency_of[row->ref]];

	if (!cf->rechecked[row->ref])
		return;
	cf->row_found = true;
	v[0] = PointerGetDatum(cstring_to_text_with_len(row->txn_id, (int) row->txn_id_len));
	v[1] = CStringGetTextDatum(cf->user_of[row->ref]);
	v[2] = CStringGetTextDatum(bal_finding_name(c->finding));
	if (c->finding == BAL_OUT_OF_RANGE || (c->finding == BAL_OVERDRAFT && !row->balances_valid))
		n[3] = n[4] = n[5] = true;
	else if (c->finding == BAL_OVERDRAFT)
	{
		n[3] = n[5] = true;
		v[4] = recon_dec_to_numeric(c->actual);
	}
	else
	{
		v[3] = recon_dec_to_numeric(c->expected);
		v[4] = recon_dec_to_numeric(c->actual);
		v[5] = recon_dec_to_numeric(c->difference);
	}
	v[6] = cur->tolerance_datum;
	v[7] = cur->code_datum;
	v[8] = BoolGetDatum(recon_chain_is_wanted(cf, row));
	tuplestore_putvalues(cf->rsinfo->setResult, cf->rsinfo->setDesc, v, n);
}

/* the row of a re-checked stored row without findings: finding NULL */
static void
recon_chain_emit_none(ChainFindings *cf, const walk_row *row)
{
	Datum		v[9];
	bool		n[9] = {false, false, true, true, true, true, true, false, false};

	if (recon_chain_is_wanted(cf, row))
		return;
	v[0] = PointerGetDatum(cstring_to_text_with_len(row->txn_id, (int) row->txn_id_len));
	v[1] = CStringGetTextDatum(cf->user_of[row->ref]);
	v[2] = v[3] = v[4] = v[5] = v[6] = (Datum) 0;
	v[7] = cf->currencies.items[cf->currency_of[row->ref]].code_datum;
	v[8] = BoolGetDatum(false);
	tuplestore_putvalues(cf->rsinfo->setResult, cf->rsinfo->setDesc, v, n);
}

static void
recon_chain_walk_user(ChainFindings *cf)
{
	bal_walk	state;
	int64		i;

	walk_order(cf->rows, (size_t) cf->nrows, NULL, NULL);
	bal_walk_init(&state);
	for (i = 0; i < cf->nrows; i++)
	{
		cf->row_found = false;
		walk_step(&state, &cf->rows[i], recon_chain_emit, cf);
		if (cf->rechecked[cf->rows[i].ref] && !cf->row_found)
			recon_chain_emit_none(cf, &cf->rows[i]);
	}
	cf->nrows = 0;
	MemoryContextReset(cf->user_cxt);
}

/*
 * The given rows (the wanted set) and the SPI connection the walk reads
 * through; false when no id is given.  Each result row ends with whether
 * its row is a given one; chain_findings() declares one column less, and
 * a tuple is formed from the declared columns only.
 */
static bool
recon_chain_begin(ChainFindings *cf, FunctionCallInfo fcinfo, ArrayType *ids,
				  const char *currencies_table)
{
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	memset(cf, 0, sizeof(*cf));
	cf->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	deconstruct_array(ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &nelems);
	name_index_init(&cf->wanted, (uint32) nelems);
	for (i = 0; i < nelems; i++)
		if (!elem_nulls[i])
		{
			const char *s;
			int			len;

			s = recon_text_bytes(elems[i], &len);
			(void) name_index_add(&cf->wanted, s, len, hash_bytes((const unsigned char *) s, len));
		}
	cf->nwanted = (int) cf->wanted.n;
	if (cf->nwanted == 0)
		return false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	recon_load_currencies(&cf->currencies, currencies_table);
	cf->user_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon chain_findings user",
										 ALLOCSET_DEFAULT_SIZES);
	cf->caprows = 64;
	cf->rows = recon_alloc_walk_rows(cf->caprows);
	cf->currency_of = palloc(sizeof(uint16) * cf->caprows);
	cf->user_of = palloc(sizeof(char *) * cf->caprows);
	cf->rechecked = palloc(sizeof(bool) * cf->caprows);
	return true;
}

/* Room for one more row in the arrays of cf. */
static void
recon_chain_reserve(ChainFindings *cf)
{
	walk_row   *bigger;

	if (cf->nrows < cf->caprows)
		return;
	cf->caprows *= 2;
	bigger = recon_alloc_walk_rows(cf->caprows);
	memcpy(bigger, cf->rows, sizeof(walk_row) * cf->nrows);
	cf->rows = bigger;
	cf->currency_of = repalloc_huge(cf->currency_of, sizeof(uint16) * cf->caprows);
	cf->user_of = repalloc_huge(cf->user_of, sizeof(char *) * cf->caprows);
	cf->rechecked = repalloc_huge(cf->rechecked, sizeof(bool) * cf->caprows);
}

/*
 * Appends one stored row (its txn_id copied into txn_cxt) as the walk reads
 * it.  v: txn_id, user_id (unused), txn_type, currency, amount, vat,
 * old_balance, new_balance, logged_at.
 */
static void
recon_chain_add_row(ChainFindings *cf, MemoryContext txn_cxt, const Datum *v, bool type_null,
					const char *user_id, bool rechecked)
{
	walk_row   *w;
	const char *s;
	char	   *txn_id;
	int			len;

	recon_chain_reserve(cf);
	w = &cf->rows[cf->nrows];
	memset(w, 0, sizeof(*w));
	w->ref = (uint32) cf->nrows;
	s = recon_text_bytes(v[0], &len);
	txn_id = MemoryContextAlloc(txn_cxt, len + 1);
	memcpy(txn_id, s, len);
	txn_id[len] = '\0';
	w->txn_id = txn_id;
	w->txn_id_len = len;
	cf->user_of[cf->nrows] = user_id;
	w->type = recon_type_from_text(v[2], type_null, ERRCODE_DATA_EXCEPTION);
	s = recon_text_bytes(v[3], &len);
	cf->currency_of[cf->nrows] = (uint16) recon_currency_index(&cf->currencies, s, len);
	w->tolerance = recon_get(&cf->currencies.items[cf->currency_of[cf->nrows]].tolerance);
	w->amounts_valid = recon_decode_numeric(v[4], &w->amount) == BAL_OK
		&& recon_decode_numeric(v[5], &w->vat) == BAL_OK;
	w->balances_valid = recon_decode_numeric(v[6], &w->old_balance) == BAL_OK
		&& recon_decode_numeric(v[7], &w->new_balance) == BAL_OK;
	if (!w->balances_valid)
		w->new_balance_sign = (int8) (recon_numeric_sign(v[7]) < 0 ? -1 : 1);
	w->logged_at = DatumGetTimestampTz(v[8]);
	cf->rechecked[cf->nrows] = rechecked;
	cf->nrows++;
}

/*
 * Reads the rows the plan returns (txn_id, user_id, txn_type, currency,
 * amount, vat, old_balance, new_balance, logged_at, re-checked; grouped by
 * user) and walks each user's rows.
 */
static void
recon_chain_read_walk(ChainFindings *cf, SPIPlanPtr plan, Datum *args)
{
	Portal		portal;
	char	   *current_user_id = NULL;

	/* read_only: the caller's snapshot, the one its statement runs on */
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		uint64		k;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (k = 0; k < SPI_processed; k++)
		{
			Datum		v[10];
			bool		isnull[10];
			const char *s;
			int			len;
			int			c;

			heap_deform_tuple(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, v, isnull);
			for (c = 0; c < 10; c++)
				if (isnull[c] && c != 2)
					elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
			s = recon_text_bytes(v[1], &len);
			if (current_user_id == NULL || (int) strlen(current_user_id) != len
				|| memcmp(current_user_id, s, len) != 0)
			{
				recon_chain_walk_user(cf);
				current_user_id = MemoryContextAlloc(cf->user_cxt, len + 1);
				memcpy(current_user_id, s, len);
				current_user_id[len] = '\0';
			}
			recon_chain_add_row(cf, cf->user_cxt, v, isnull[2], current_user_id,
								DatumGetBool(v[9]));
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	recon_chain_walk_user(cf);
	SPI_cursor_close(portal);
	SPI_finish();
}

/*
 * Many users (a bulk insert): one sequential scan of transactions on the
 * statement's snapshot keeps the rows of the given users from their
 * predecessor instant on (the latest logged_at before the user's first new
 * one), then the rows are grouped per user (counting sort) and walked, as
 * reconcile() does for all users.  No join, sort or SPI row copies.
 */
static void
recon_chain_scan_walk(ChainFindings *cf, Oid relid, ArrayType *users, ArrayType *first_new)
{
	Datum	   *names;
	bool	   *name_nulls;
	Datum	   *firsts;
	bool	   *first_nulls;
	int			nusers;
	int			nfirsts;
	NameIndex	wanted_users;
	int64	   *first;			/* per user: earliest new instant */
	int64	   *since;			/* per user: latest instant before it, or first */
	uint32	   *row_user;
	int64		caprow_user;
	ChainFindings all;
	MemoryContext txn_cxt;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	ReconAtts	at;
	AttrNumber	att_txn_id;
	AttrNumber	maxatt;
	int64	   *start;
	int64	   *fill;
	uint32	   *order;
	int64		r;
	int			i;

	deconstruct_array(users, TEXTOID, -1, false, TYPALIGN_INT, &names, &name_nulls, &nusers);
	deconstruct_array(first_new, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &firsts, &first_nulls, &nfirsts);
	name_index_init(&wanted_users, (uint32) nusers);
	first = palloc(sizeof(int64) * Max(nusers, 1));
	since = palloc(sizeof(int64) * Max(nusers, 1));
	for (i = 0; i < nusers; i++)
	{
		const char *s;
		int			len;
		uint32		u;

		if (name_nulls[i] || first_nulls[i])
			continue;
		s = recon_text_bytes(names[i], &len);
		u = name_index_add(&wanted_users, s, len, hash_bytes((const unsigned char *) s, len));
		first[u] = (u + 1 == wanted_users.n) ? DatumGetTimestampTz(firsts[i])
			: Min(first[u], DatumGetTimestampTz(firsts[i]));
		since[u] = PG_INT64_MIN;
	}

	/* every kept row, all users mixed; txn_ids live until the end */
	all = *cf;
	all.nrows = 0;
	all.caprows = 1024;
	all.rows = recon_alloc_walk_rows(all.caprows);
	all.currency_of = palloc(sizeof(uint16) * all.caprows);
	all.user_of = palloc(sizeof(char *) * all.caprows);
	all.rechecked = palloc(sizeof(bool) * all.caprows);
	caprow_user = all.caprows;
	row_user = palloc(sizeof(uint32) * caprow_user);
	txn_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon chain_findings rows",
									ALLOCSET_DEFAULT_SIZES);

	rel = table_open(relid, AccessShareLock);
	att_txn_id = recon_attnum(rel, "txn_id");
	at.user_id = recon_attnum(rel, "user_id");
	at.txn_type = recon_attnum(rel, "txn_type");
	at.currency = recon_attnum(rel, "currency");
	at.amount = recon_attnum(rel, "amount");
	at.vat = recon_attnum(rel, "vat");
	at.old_balance = recon_attnum(rel, "old_balance");
	at.new_balance = recon_attnum(rel, "new_balance");
	at.logged_at = recon_attnum(rel, "logged_at");
	maxatt = Max(Max(Max(at.user_id, at.txn_type), Max(at.currency, at.amount)),
				 Max(Max(at.vat, at.old_balance), Max(at.new_balance, at.logged_at)));
	maxatt = Max(maxatt, att_txn_id);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum	   *tv;
		bool	   *tn;
		Datum		v[9];
		const char *s;
		int			len;
		int64		u;
		TimestampTz logged_at;

		slot_getsomeattrs(slot, maxatt);
		tv = slot->tts_values;
		tn = slot->tts_isnull;
		if (tn[at.user_id - 1] || tn[at.logged_at - 1])
			elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
		s = recon_text_bytes(tv[at.user_id - 1], &len);
		u = name_index_find(&wanted_users, s, len);
		if (u < 0)
			continue;
		logged_at = DatumGetTimestampTz(tv[at.logged_at - 1]);
		if (logged_at < first[u])
		{
			/* only a row at the latest instant so far can be the predecessor */
			if (logged_at < since[u])
				continue;
			since[u] = logged_at;
		}
		if (tn[att_txn_id - 1] || tn[at.currency - 1] || tn[at.amount - 1] || tn[at.vat - 1]
			|| tn[at.old_balance - 1] || tn[at.new_balance - 1])
			elog(ERROR, "calo_recon.transactions holds a row with a NULL required column");
		v[0] = tv[att_txn_id - 1];
		v[1] = (Datum) 0;
		v[2] = tv[at.txn_type - 1];
		v[3] = tv[at.currency - 1];
		v[4] = tv[at.amount - 1];
		v[5] = tv[at.vat - 1];
		v[6] = tv[at.old_balance - 1];
		v[7] = tv[at.new_balance - 1];
		v[8] = tv[at.logged_at - 1];
		if (all.nrows == caprow_user)
		{
			caprow_user *= 2;
			row_user = repalloc_huge(row_user, sizeof(uint32) * caprow_user);
		}
		row_user[all.nrows] = (uint32) u;
		recon_chain_add_row(&all, txn_cxt, v, tn[at.txn_type - 1],
							wanted_users.names[u].name, logged_at >= first[u]);
		if ((all.nrows & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	cf->currencies = all.currencies;	/* the currencies the rows added */

	/* group per user, dropping rows before the user's predecessor instant */
	start = palloc0(sizeof(int64) * (wanted_users.n + 1));
	fill = palloc(sizeof(int64) * (wanted_users.n + 1));
	order = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(all.nrows, 1));
	for (r = 0; r < all.nrows; r++)
		if (all.rows[r].logged_at >= since[row_user[r]])
			start[row_user[r] + 1]++;
	for (i = 0; i < (int) wanted_users.n; i++)
		start[i + 1] += start[i];
	memcpy(fill, start, sizeof(int64) * (wanted_users.n + 1));
	for (r = 0; r < all.nrows; r++)
		if (all.rows[r].logged_at >= since[row_user[r]])
			order[fill[row_user[r]]++] = (uint32) r;
	for (i = 0; i < (int) wanted_users.n; i++)
	{
		int64		k;

		CHECK_FOR_INTERRUPTS();
		for (k = start[i]; k < start[i + 1]; k++)
		{
			uint32		src = order[k];

			recon_chain_reserve(cf);
			cf->rows[cf->nrows] = all.rows[src];
			cf->rows[cf->nrows].ref = (uint32) cf->nrows;
			cf->currency_of[cf->nrows] = all.currency_of[src];
			cf->user_of[cf->nrows] = all.user_of[src];
			cf->rechecked[cf->nrows] = all.rechecked[src];
			cf->nrows++;
		}
		recon_chain_walk_user(cf);
	}
	SPI_finish();
}

Datum
calo_recon_chain_findings(PG_FUNCTION_ARGS)
{
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(0);
	ChainFindings cf;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {PointerGetDatum(ids)};
	SPIPlanPtr	plan;

	if (!recon_chain_begin(&cf, fcinfo, ids, "calo_recon.currencies"))
		return (Datum) 0;
	plan = SPI_prepare("SELECT t.txn_id, t.user_id, t.txn_type, t.currency, t.amount, t.vat, "
					   "t.old_balance, t.new_balance, t.logged_at, "
					   "t.logged_at OPERATOR(pg_catalog.>=) u.first_new "
					   "FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS first_new "
					   "      FROM calo_recon.transactions n "
					   "      WHERE n.txn_id OPERATOR(pg_catalog.=) ANY ($1) GROUP BY n.user_id) u "
					   "CROSS JOIN LATERAL (SELECT pg_catalog.max(p.logged_at) AS since "
					   "      FROM calo_recon.transactions p "
					   "      WHERE p.user_id OPERATOR(pg_catalog.=) u.user_id "
					   "        AND p.logged_at OPERATOR(pg_catalog.<) u.first_new) b "
					   "JOIN calo_recon.transactions t ON t.user_id OPERATOR(pg_catalog.=) u.user_id "
					   " AND t.logged_at OPERATOR(pg_catalog.>=) COALESCE(b.since, u.first_new) "
					   "ORDER BY t.user_id COLLATE pg_catalog.\"C\"", 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	recon_chain_read_walk(&cf, plan, args);
	return (Datum) 0;
}

/*
 * The alert trigger's walk over one table of transactions (calo_recon's, or
 * a shard of it on a Citus worker, with the reference shard of currencies):
 * the trigger knows from its transition table each user's earliest new
 * instant, so the new rows are not looked up again by id (a million index
 * probes for a million-row COPY).  A few users are read through the
 * user/chain index, many in one scan.
 */
#define RECON_CHAIN_SCAN_USERS 1000

static void
recon_chain_since(FunctionCallInfo fcinfo, ArrayType *users, ArrayType *first_new, ArrayType *ids,
				  Oid relid, const char *txn_table, const char *currencies_table)
{
	ChainFindings cf;
	Oid			argtypes[2] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[2] = {PointerGetDatum(users), PointerGetDatum(first_new)};
	SPIPlanPtr	plan;
	int			nusers = ArrayGetNItems(ARR_NDIM(users), ARR_DIMS(users));
	int			nfirst = ArrayGetNItems(ARR_NDIM(first_new), ARR_DIMS(first_new));

	if (nusers != nfirst)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("calo_recon.chain_findings_since: user_ids and first_new differ in length"),
				 errdetail("%d user ids, %d instants.", nusers, nfirst),
				 errhint("Pass each user's earliest new logged_at at the same position.")));
	if (!recon_chain_begin(&cf, fcinfo, ids, currencies_table))
		return;
	if (nusers > RECON_CHAIN_SCAN_USERS)
	{
		/*
		 * The scan reads the heap directly: only for a caller who may read
		 * every row; otherwise the query below raises or filters as SQL does.
		 */
		if (OidIsValid(relid)
			&& pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK
			&& check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		{
			recon_chain_scan_walk(&cf, relid, users, first_new);
			return;
		}
	}
	plan = SPI_prepare(psprintf("SELECT t.txn_id, t.user_id, t.txn_type, t.currency, t.amount, t.vat, "
								"t.old_balance, t.new_balance, t.logged_at, "
								"t.logged_at OPERATOR(pg_catalog.>=) u.first_new "
								"FROM unnest($1, $2) AS u (user_id, first_new) "	/* multi-argument form: unqualified */
								"CROSS JOIN LATERAL (SELECT pg_catalog.max(p.logged_at) AS since "
								"      FROM %s p "
								"      WHERE p.user_id OPERATOR(pg_catalog.=) u.user_id "
								"        AND p.logged_at OPERATOR(pg_catalog.<) u.first_new) b "
	/*
	 * LATERAL: each user's rows through the index, never a hash join over the
	 * whole table (the plan a growing, not yet analyzed table gets during an
	 * ingest, once per file)
	 */
								"CROSS JOIN LATERAL (SELECT s.* FROM %s s "
								"      WHERE s.user_id OPERATOR(pg_catalog.=) u.user_id "
								"        AND s.logged_at OPERATOR(pg_catalog.>=) COALESCE(b.since, u.first_new) "
								"      OFFSET 0) t "
								"ORDER BY t.user_id COLLATE pg_catalog.\"C\"", txn_table, txn_table),
					   2, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	recon_chain_read_walk(&cf, plan, args);
}

/*
 * On a Citus cluster (README "Scaling out with Citus"): one query over
 * calo_recon.shard_anchors walks each shard group on the node that holds it
 * (chain_findings_since_placement: a user's rows are all in one shard), and
 * the findings come back here.
 */
static void
recon_chain_since_distributed(FunctionCallInfo fcinfo, Datum users, Datum first_new, Datum ids)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[3] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
	Datum		args[3] = {users, first_new, ids};
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext caller = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare("SELECT f.* FROM calo_recon.shard_anchors a "
					   "CROSS JOIN LATERAL calo_recon.chain_findings_since_placement(a.tableoid, $1, $2, $3) f",
					   3, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		if (SPI_tuptable->tupdesc->natts != rsinfo->setDesc->natts)
			elog(ERROR, "chain_findings_since_placement must return %d columns", rsinfo->setDesc->natts);
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);

			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[k]);
			MemoryContextSwitchTo(spi);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/*
 * calo_recon.chain_findings_since(user_ids text[], first_new timestamptz[],
 * new_txn_ids text[]): the alert trigger's walk (recon_chain_since), per
 * shard group on a Citus cluster.
 */
Datum
calo_recon_chain_findings_since(PG_FUNCTION_ARGS)
{
	Oid			relid = get_relname_relid("transactions", get_namespace_oid("calo_recon", false));

	if (!OidIsValid(relid))
		elog(ERROR, "table calo_recon.transactions does not exist");
	if (calo_citus_is_distributed(relid))
		recon_chain_since_distributed(fcinfo, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2));
	else
		recon_chain_since(fcinfo, PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1),
						  PG_GETARG_ARRAYTYPE_P(2), relid, "calo_recon.transactions",
						  "calo_recon.currencies");
	return (Datum) 0;
}

/*
 * calo_recon.chain_findings_since_placement(anchor_shard oid, user_ids text[],
 * first_new timestamptz[], new_txn_ids text[]): chain_findings_since over the
 * shard of transactions in the shard group of anchor_shard, on the node that
 * holds it (called by recon_chain_since_distributed's query).
 */
Datum
calo_recon_chain_findings_since_placement(PG_FUNCTION_ARGS)
{
	char	   *txn_table;
	char	   *currencies_table;
	Oid			txn_relid;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	txn_relid = calo_citus_colocated_shard(PG_GETARG_OID(0), "transactions", &txn_table);
	currencies_table = calo_citus_reference_shard("currencies");
	txn_table = MemoryContextStrdup(caller, txn_table);
	currencies_table = MemoryContextStrdup(caller, currencies_table);
	SPI_finish();
	if (!OidIsValid(txn_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %s has no placement on this node", txn_table)));
	recon_chain_since(fcinfo, PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2),
					  PG_GETARG_ARRAYTYPE_P(3), txn_relid, txn_table, currencies_table);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * The walk's rules for SQL (the views): one home, here and in walk.c
 * --------------------------------------------------------------------- */

/* calo_recon.chain_key(logged_at timestamptz, txn_id text) RETURNS bytea */
Datum
calo_recon_chain_key(PG_FUNCTION_ARGS)
{
	TimestampTz logged_at = PG_GETARG_TIMESTAMPTZ(0);
	text	   *txn_id = PG_GETARG_TEXT_PP(1);
	int			len = VARSIZE_ANY_EXHDR(txn_id);
	bytea	   *key = palloc(VARHDRSZ + WALK_KEY_PREFIX + len);

	SET_VARSIZE(key, VARHDRSZ + WALK_KEY_PREFIX + len);
	walk_chain_key(logged_at, VARDATA_ANY(txn_id), len, (unsigned char *) VARDATA(key));
	PG_RETURN_BYTEA_P(key);
}

/* calo_recon.tolerance(minor_unit integer) RETURNS numeric; NULL: the default */
Datum
calo_recon_tolerance(PG_FUNCTION_ARGS)
{
	int			minor = PG_ARGISNULL(0) ? BAL_DEFAULT_MINOR_UNIT : PG_GETARG_INT32(0);

	PG_RETURN_DATUM(recon_dec_to_numeric(bal_tolerance(minor)));
}

/*
 * calo_recon.within_tolerance(difference numeric, minor_unit integer):
 * |difference| < tolerance(minor_unit), the rule by which reconcile() tells
 * drift from a break, for the differences the views compute themselves (a
 * discrepancy's, a user's figures' gap); NULL for a NULL difference.
 */
Datum
calo_recon_within_tolerance(PG_FUNCTION_ARGS)
{
	int			minor = PG_ARGISNULL(1) ? BAL_DEFAULT_MINOR_UNIT : PG_GETARG_INT32(1);
	Datum		size;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	size = DirectFunctionCall1(numeric_abs, PG_GETARG_DATUM(0));
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_lt, size, recon_dec_to_numeric(bal_tolerance(minor))));
}

/*
 * calo_recon.wallet_gap(opening, credits_net, debits_net, closing numeric):
 * closing - (opening + credits_net - debits_net), what a wallet's figures
 * leave unexplained (user_summary's reconcile_difference), exact.
 */
Datum
calo_recon_wallet_gap(PG_FUNCTION_ARGS)
{
	Datum		moved = DirectFunctionCall2(numeric_sub, PG_GETARG_DATUM(1), PG_GETARG_DATUM(2));
	Datum		expected = DirectFunctionCall2(numeric_add, PG_GETARG_DATUM(0), moved);

	PG_RETURN_DATUM(DirectFunctionCall2(numeric_sub, PG_GETARG_DATUM(3), expected));
}

/* calo_recon.is_credit(txn_type text, old_balance numeric, new_balance numeric) */
Datum
calo_recon_is_credit(PG_FUNCTION_ARGS)
{
	bal_type	type;
	int			cmp;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	type = recon_type_arg(fcinfo, 0);
	cmp = DatumGetInt32(DirectFunctionCall2(numeric_cmp, PG_GETARG_DATUM(2),
														PG_GETARG_DATUM(1)));

	PG_RETURN_BOOL(bal_is_credit(type, cmp));
}

/* calo_recon.is_overdraft(new_balance numeric) */
Datum
calo_recon_is_overdraft(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(bal_is_overdraft(recon_numeric_sign(PG_GETARG_DATUM(0))));
}

/*
 * calo_recon.finding_rank(finding text) RETURNS integer: where the walk
 * reports a finding among those of one transaction (bal_finding's order);
 * NULL for a name the walk does not report (conflict, amount_rule, ...).
 */
Datum
calo_recon_finding_rank(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	bal_finding f = bal_finding_from_name(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));

	if (f == BAL_NONE)
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) f);
}

/*
 * calo_recon.is_break(finding text) RETURNS boolean: whether the walk's
 * finding of that name is a break (bal_finding_is_break: chain, arithmetic,
 * out_of_range), the one list balance_breaks, the insert-time alerts and
 * reconcile()'s resolution of unsupported alerts read; false for drift,
 * overdraft and any other text.
 */
Datum
calo_recon_is_break(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(bal_finding_is_break(bal_finding_from_name(VARDATA_ANY(name),
															  VARSIZE_ANY_EXHDR(name))));
}

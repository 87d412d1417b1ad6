/*
 * lpfield.c: the data events and the field rules of their kinds (plain C
 * core); see lpfield.h.
 */
#include "lpfield.h"
#include "jsonstrict.h"
#include "lpbuf.h"
#include "lpkind.h"
#include "lpnum.h"
#include "lptext.h"
#include "nodelit.h"

#include <stdio.h>
#include <string.h>

static const nodelit_node *
lpfield_node(lpevent_ctx *c, int id)
{
	return &((const nodelit_node *) c->res->priv_nodes)[id];
}

static bool
lpfield_is_nullish(lpevent_ctx *c, int id)
{
	return id < 0 || lpfield_node(c, id)->type == NODELIT_NULL || lpfield_node(c, id)->type == NODELIT_UNDEFINED;
}

/*
 * The field rules of the data events: one table per kind (below), each row a
 * key, what its value is, whether it is required and a further rule.  This is
 * the one home of the validation of data events: ingestion stores what the
 * parser accepts and quarantines what it makes malformed, with its reason.
 */
typedef enum lpfield_value
{
	FV_STRING,					/* a non-empty string */
	FV_NUMBER,					/* a finite number */
	FV_BOOL,
	FV_METADATA					/* a string (JSON inside becomes JSON), object, array, number or boolean */
} lpfield_value;

typedef enum lpfield_rule
{
	FR_NONE,
	FR_MONEY,					/* lp_money_in_range(): out_of_range beyond it */
	FR_CURRENCY_CODE,			/* lp_currency_code_valid() */
	FR_TRANSACTION_TYPE			/* lp_transaction_type_valid() */
} lpfield_rule;

typedef struct lpfield_spec
{
	const char *key;
	lpfield_value value;
	bool		required;		/* absent: missing_field; else absent, null and undefined are null */
	lpfield_rule rule;
	bool		event_id;		/* the id of the event itself (quarantine.txn_id) */
} lpfield_spec;

#define REQUIRED true
#define OPTIONAL false

static const lpfield_spec current_txn_fields[] = {
	{"id", FV_STRING, REQUIRED, FR_NONE, true},
	{"type", FV_STRING, REQUIRED, FR_TRANSACTION_TYPE, false},
	{"source", FV_STRING, OPTIONAL, FR_NONE, false},
	{"action", FV_STRING, OPTIONAL, FR_NONE, false},
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"paymentBalance", FV_NUMBER, OPTIONAL, FR_MONEY, false},
	{"updatePaymentBalance", FV_BOOL, OPTIONAL, FR_NONE, false},
	{"metadata", FV_METADATA, OPTIONAL, FR_NONE, false},
	{"currency", FV_STRING, REQUIRED, FR_CURRENCY_CODE, false},
	{"amount", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"vat", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"oldBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"newBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
static const lpfield_spec legacy_txn_fields[] = {
	{"id", FV_STRING, REQUIRED, FR_NONE, true},
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"currency", FV_STRING, REQUIRED, FR_CURRENCY_CODE, false},
	{"amount", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"vat", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"oldBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"newBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
/* the legacy form (Dec 2023) has none of these keys the current form added */
static const char *const current_only_keys[] = {
	"type", "source", "action", "paymentBalance", "updatePaymentBalance", "metadata"
};
static const lpfield_spec balance_error_fields[] = {
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"subscriptionBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"paymentBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
/* transactionId is required: a refusal is traced by the transaction it refused */
static const lpfield_spec rejection_fields[] = {
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"currentBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"transactionId", FV_STRING, REQUIRED, FR_NONE, true}
};

/* members the parser adds after the validated fields */
#define LEGACY_KEY "legacy"			/* transaction: which form it was logged in */
#define LINK_KEY "txn_id"			/* balance_error: the transaction it is about */
#define MESSAGE_KEY "message"		/* negative_balance_rejection: the refusal's text */

#define N_SPECS(a) ((int) (sizeof(a) / sizeof((a)[0])))
#define MAX_SPECS 16
_Static_assert(N_SPECS(current_txn_fields) <= MAX_SPECS && N_SPECS(legacy_txn_fields) <= MAX_SPECS &&
			   N_SPECS(balance_error_fields) <= MAX_SPECS && N_SPECS(rejection_fields) <= MAX_SPECS,
			   "lpfield_emit() holds at most MAX_SPECS fields");

/* what a field check found */
typedef enum lpfield_verdict
{
	FIELD_OK,
	FIELD_MISSING,				/* missing_field */
	FIELD_BAD,					/* bad_field: not of its type */
	FIELD_UNSTORABLE,			/* bad_field: U+0000 or a lone surrogate */
	FIELD_NOT_CURRENCY,			/* bad_field: not three capital letters */
	FIELD_NOT_TRANSACTION_TYPE, /* bad_field: not CREDIT or DEBIT */
	FIELD_TOO_LONG,				/* out_of_range: a string over LP_MAX_FIELD_BYTES */
	FIELD_TOO_BIG_NUMBER,		/* out_of_range: a number over the number limits */
	FIELD_MONEY_OUT_OF_RANGE	/* out_of_range: money of 10^LP_MONEY_LIMIT_POWER or more */
} lpfield_verdict;

bool
lp_currency_code_valid(const char *s, size_t n)
{
	if (n != 3)
		return false;
	for (size_t i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

bool
lp_transaction_type_valid(const char *s, size_t n)
{
	return (n == 6 && memcmp(s, "CREDIT", 6) == 0) || (n == 5 && memcmp(s, "DEBIT", 5) == 0);
}

static const char *
lpfield_expectation(const lpfield_spec *spec)
{
	switch (spec->value)
	{
		case FV_STRING:
			return spec->required ? "a non-empty string" : "a non-empty string or undefined";
		case FV_NUMBER:
			return spec->required ? "a finite number" : "a finite number or undefined";
		case FV_BOOL:
			return "true, false or undefined";
		case FV_METADATA:
			return "a string, an object or undefined";
	}
	return "valid";
}

/*
 * Replaces the body being built with a malformed one about the data field
 * key; id_node: the event's own id when it is a storable string, else -1.
 */
static void
lpfield_set_malformed(lpevent_ctx *c, lp_event *ev, const char *reason, lp_kind intended, const char *detail,
					const char *key, int id_node)
{
	lpevent_set_malformed(c, ev, reason, intended, detail);
	if (!c->out->failed)
		c->out->len--;			/* the closing brace */
	lpbuf_lit(c->out, ",\"field\":");
	lpbuf_put_json_string(c->out, key, strlen(key));
	if (id_node >= 0)
	{
		const nodelit_node *n = lpfield_node(c, id_node);

		lpbuf_lit(c->out, ",\"txn_id\":");
		lpbuf_put_json_string(c->out, c->res->priv_scratch.data + n->str_off, n->str_len);
	}
	lpbuf_putc(c->out, '}');
}

static void
lpfield_set_failure(lpevent_ctx *c, lp_event *ev, lp_kind intended, const lpfield_spec *spec, int node,
				  lpfield_verdict verdict, int id_node)
{
	char		detail[320];
	const char *reason = "bad_field";
	const char *key = spec->key;
	const nodelit_node *n = node >= 0 ? lpfield_node(c, node) : NULL;
	int			line = 0,
				col = 0;

	if (n != NULL)
		lpevent_position(ev, n->src, &line, &col);
	switch (verdict)
	{
		case FIELD_OK:
		case FIELD_MISSING:
			snprintf(detail, sizeof(detail), "%s: required key '%s' is missing", lp_kind_name(intended), key);
			reason = "missing_field";
			break;
		case FIELD_BAD:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not %s",
					 lp_kind_name(intended), key, line, col, lpfield_expectation(spec));
			break;
		case FIELD_UNSTORABLE:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d holds U+0000 or a lone surrogate, which cannot be stored",
					 lp_kind_name(intended), key, line, col);
			break;
		case FIELD_NOT_CURRENCY:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d is not a currency code (three capital letters)",
					 lp_kind_name(intended), key, line, col);
			break;
		case FIELD_NOT_TRANSACTION_TYPE:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not CREDIT or DEBIT",
					 lp_kind_name(intended), key, line, col);
			break;
		case FIELD_TOO_LONG:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is %zu bytes long, more than the limit of %d",
					 lp_kind_name(intended), key, line, col, n->str_len, LP_MAX_FIELD_BYTES);
			reason = "out_of_range";
			break;
		case FIELD_TOO_BIG_NUMBER:
			if (n->src_len > LP_MAX_NUMBER_LEN)
				snprintf(detail, sizeof(detail),
						 "%s: key '%s' at line %d, column %d is a number of %zu characters, more than the limit of %d",
						 lp_kind_name(intended), key, line, col, n->src_len, LP_MAX_NUMBER_LEN);
			else
				snprintf(detail, sizeof(detail),
						 "%s: key '%s' at line %d, column %d is a number with an exponent beyond the limit of +-%d",
						 lp_kind_name(intended), key, line, col, LP_MAX_EXPONENT);
			reason = "out_of_range";
			break;
		case FIELD_MONEY_OUT_OF_RANGE:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d is money of 10^%d or more, beyond any wallet balance",
					 lp_kind_name(intended), key, line, col, LP_MONEY_LIMIT_POWER);
			reason = "out_of_range";
			break;
	}
	lpfield_set_malformed(c, ev, reason, intended, detail, key, id_node);
}

/* key of the event's data is missing or not an object */
static void
lpfield_set_not_object(lpevent_ctx *c, lp_event *ev, lp_kind intended, const char *key, int node)
{
	char		detail[256];
	int			line,
				col;

	if (node < 0)
	{
		snprintf(detail, sizeof(detail), "%s: required key '%s' is missing", lp_kind_name(intended), key);
		lpfield_set_malformed(c, ev, "missing_field", intended, detail, key, -1);
		return;
	}
	lpevent_position(ev, lpfield_node(c, node)->src, &line, &col);
	snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not an object",
			 lp_kind_name(intended), key, line, col);
	lpfield_set_malformed(c, ev, "bad_field", intended, detail, key, -1);
}

static lpfield_verdict
lpfield_number_verdict(lpevent_ctx *c, int id, lpfield_rule rule)
{
	const nodelit_node *n = lpfield_node(c, id);

	if (n->type != NODELIT_NUMBER)
		return FIELD_BAD;
	switch (lpnum_check(NULL, n->src, n->src_len, false))
	{
		case LPNUM_OK:
			if (rule == FR_MONEY && !lp_money_in_range(n->src, n->src_len))
				return FIELD_MONEY_OUT_OF_RANGE;
			return FIELD_OK;
		case LPNUM_TOO_BIG:
			return FIELD_TOO_BIG_NUMBER;
		default:
			return FIELD_BAD;
	}
}

static lpfield_verdict
lpfield_string_verdict(lpevent_ctx *c, int id, lpfield_rule rule)
{
	const nodelit_node *n = lpfield_node(c, id);
	const char *s;

	if (n->type != NODELIT_STRING || n->str_len == 0)
		return FIELD_BAD;
	if (n->unstorable)
		return FIELD_UNSTORABLE;
	if (n->str_len > LP_MAX_FIELD_BYTES)
		return FIELD_TOO_LONG;
	s = c->res->priv_scratch.data + n->str_off;
	if (rule == FR_CURRENCY_CODE && !lp_currency_code_valid(s, n->str_len))
		return FIELD_NOT_CURRENCY;
	if (rule == FR_TRANSACTION_TYPE && !lp_transaction_type_valid(s, n->str_len))
		return FIELD_NOT_TRANSACTION_TYPE;
	return FIELD_OK;
}

/* a metadata object or array literal: no string or member name jsonb cannot store */
static bool
lpfield_storable_tree(lpevent_ctx *c, int id)
{
	const nodelit_node *n = lpfield_node(c, id);

	if (n->unstorable || n->key_unstorable)
		return false;
	if (n->type == NODELIT_OBJECT || n->type == NODELIT_ARRAY)
		for (int ch = n->first; ch >= 0; ch = lpfield_node(c, ch)->next)
			if (!lpfield_storable_tree(c, ch))
				return false;
	return true;
}

static lpfield_verdict
lpfield_check(lpevent_ctx *c, int id, const lpfield_spec *spec)
{
	if (id < 0)
		return spec->required ? FIELD_MISSING : FIELD_OK;
	/* null and undefined stand for "absent" in an optional field, never in a required one */
	if (!spec->required && lpfield_is_nullish(c, id))
		return FIELD_OK;
	switch (spec->value)
	{
		case FV_STRING:
			return lpfield_string_verdict(c, id, spec->rule);
		case FV_NUMBER:
			return lpfield_number_verdict(c, id, spec->rule);
		case FV_BOOL:
			return (lpfield_node(c, id)->type == NODELIT_TRUE || lpfield_node(c, id)->type == NODELIT_FALSE) ? FIELD_OK : FIELD_BAD;
		case FV_METADATA:
			{
				nodelit_type ty = lpfield_node(c, id)->type;

				if (ty == NODELIT_NUMBER)
					return lpfield_number_verdict(c, id, FR_NONE);
				if (ty == NODELIT_STRING || ty == NODELIT_OBJECT || ty == NODELIT_ARRAY)
					return lpfield_storable_tree(c, id) ? FIELD_OK : FIELD_UNSTORABLE;
				return (ty == NODELIT_TRUE || ty == NODELIT_FALSE) ? FIELD_OK : FIELD_BAD;
			}
	}
	return FIELD_BAD;
}

/* metadata: a string holding JSON becomes that JSON, any other string stays a string */
static void
lpfield_emit_metadata(lpevent_ctx *c, int id)
{
	const nodelit_node *n;

	if (lpfield_is_nullish(c, id))
	{
		lpbuf_lit(c->out, "null");
		return;
	}
	n = lpfield_node(c, id);
	if (n->type == NODELIT_STRING)
	{
		const char *s = c->res->priv_scratch.data + n->str_off;

		if (!jsonstrict_embed(c->out, s, n->str_len, NULL, &c->oom))
			lpbuf_put_json_string(c->out, s, n->str_len);
		return;
	}
	nodelit_emit(c->res, c->out, id);
}

/*
 * Checks the fields of obj against specs, then writes them as the members of
 * a JSON object (without braces).  Returns false (event made malformed) on
 * the first field that breaks its rule.
 */
static bool
lpfield_emit(lpevent_ctx *c, lp_event *ev, lp_kind kind, int obj, const lpfield_spec *specs, int n_specs, bool leading_comma)
{
	int			ids[MAX_SPECS];
	int			id_node = -1;

	for (int i = 0; i < n_specs; i++)
	{
		ids[i] = nodelit_get(c->res, obj, specs[i].key);
		if (specs[i].event_id && ids[i] >= 0 && lpfield_string_verdict(c, ids[i], FR_NONE) == FIELD_OK)
			id_node = ids[i];
	}
	for (int i = 0; i < n_specs; i++)
	{
		lpfield_verdict verdict = lpfield_check(c, ids[i], &specs[i]);

		if (verdict != FIELD_OK)
		{
			lpfield_set_failure(c, ev, kind, &specs[i], ids[i], verdict, id_node);
			return false;
		}
	}
	for (int i = 0; i < n_specs; i++)
	{
		const nodelit_node *n = ids[i] >= 0 ? lpfield_node(c, ids[i]) : NULL;

		if (i > 0 || leading_comma)
			lpbuf_putc(c->out, ',');
		lpbuf_put_key(c->out, specs[i].key);
		if (specs[i].value == FV_METADATA)
			lpfield_emit_metadata(c, ids[i]);
		else if (n == NULL || n->type == NODELIT_UNDEFINED || n->type == NODELIT_NULL)
			lpbuf_lit(c->out, "null");
		else
		{
			if (specs[i].event_id)
				ev->priv_txn_off = c->out->len;
			nodelit_emit(c->res, c->out, ids[i]);
			if (specs[i].event_id)
				ev->priv_txn_len = c->out->len - ev->priv_txn_off;
		}
	}
	return true;
}

/* object literal of a data-carrying message; -1 when the event was made malformed */
static int
lpfield_parse_object(lpevent_ctx *c, lp_event *ev, lp_kind kind, const char *s, const char *e)
{
	lpsyntax_error err;
	int			root = nodelit_parse_object(c->res, s, (size_t) (e - s), &err, &c->oom);

	if (root < 0)
		lpevent_set_parse_failure(c, ev, kind, &err);
	return root;
}

void
lpfield_parse_transaction(lpevent_ctx *c, lp_event *ev, const char *s, const char *e)
{
	int			root = lpfield_parse_object(c, ev, LP_TRANSACTION, s, e);
	int			txn;
	bool		legacy = true;

	if (root < 0)
		return;
	txn = nodelit_get(c->res, root, "transaction");
	if (txn < 0 || lpfield_node(c, txn)->type != NODELIT_OBJECT)
	{
		lpfield_set_not_object(c, ev, LP_TRANSACTION, "transaction", txn);
		return;
	}
	/* the legacy form (Dec 2023) has none of the keys the current form added */
	for (size_t i = 0; i < sizeof(current_only_keys) / sizeof(current_only_keys[0]); i++)
		if (nodelit_get(c->res, txn, current_only_keys[i]) >= 0)
			legacy = false;
	lpbuf_putc(c->out, '{');
	if (legacy ? !lpfield_emit(c, ev, LP_TRANSACTION, txn, legacy_txn_fields, N_SPECS(legacy_txn_fields), false)
		: !lpfield_emit(c, ev, LP_TRANSACTION, txn, current_txn_fields, N_SPECS(current_txn_fields), false))
		return;
	if (legacy)
		lpbuf_lit(c->out, ",\"" LEGACY_KEY "\":true}");
	else
		lpbuf_lit(c->out, ",\"" LEGACY_KEY "\":false}");
	ev->kind = LP_TRANSACTION;
}

void
lpfield_parse_balance_error(lpevent_ctx *c, lp_event *ev, const char *s, const char *e)
{
	int			root = lpfield_parse_object(c, ev, LP_BALANCE_ERROR, s, e);

	if (root < 0)
		return;
	lpbuf_putc(c->out, '{');
	if (!lpfield_emit(c, ev, LP_BALANCE_ERROR, root, balance_error_fields, N_SPECS(balance_error_fields), false))
		return;
	/* the link pass replaces this null when the transaction is found */
	lpbuf_lit(c->out, ",\"" LINK_KEY "\":null}");
	ev->kind = LP_BALANCE_ERROR;
}

/* A message that is an object literal: a rejection when it says so, else app_log. */
bool
lpfield_parse_rejection(lpevent_ctx *c, lp_event *ev, const char *s, const char *e)
{
	lpsyntax_error err;
	int			root = nodelit_parse_object(c->res, s, (size_t) (e - s), &err, &c->oom);
	int			msg,
				data;
	const nodelit_node *mn;

	if (root < 0)
	{
		if (!lptext_contains(s, (size_t) (e - s), REJECTION_WORDS))
			return false;
		lpevent_set_parse_failure(c, ev, LP_NEGATIVE_BALANCE_REJECTION, &err);
		return true;
	}
	msg = nodelit_get(c->res, root, "message");
	data = nodelit_get(c->res, root, "data");
	if (msg < 0 || lpfield_node(c, msg)->type != NODELIT_STRING)
		return false;
	mn = lpfield_node(c, msg);
	if (!lptext_contains(c->res->priv_scratch.data + mn->str_off, mn->str_len, REJECTION_WORDS))
		return false;
	if (data < 0 || lpfield_node(c, data)->type != NODELIT_OBJECT)
	{
		lpfield_set_not_object(c, ev, LP_NEGATIVE_BALANCE_REJECTION, "data", data);
		return true;
	}
	lpbuf_putc(c->out, '{');
	if (!lpfield_emit(c, ev, LP_NEGATIVE_BALANCE_REJECTION, data, rejection_fields, N_SPECS(rejection_fields), false))
		return true;
	lpbuf_lit(c->out, ",\"" MESSAGE_KEY "\":");
	lpbuf_put_json_string(c->out, c->res->priv_scratch.data + mn->str_off, mn->str_len);
	lpbuf_putc(c->out, '}');
	ev->kind = LP_NEGATIVE_BALANCE_REJECTION;
	return true;
}

/* appends to buf[cap] at *len like snprintf, keeping *len the length needed */
static void
lpfield_describe_put(char *buf, size_t cap, size_t *len, const char *text)
{
	size_t		n = strlen(text);

	if (*len < cap)
		snprintf(buf + *len, cap - *len, "%s", text);
	*len += n;
}

/* {"key", "key", ..., then the member the parser adds} */
static void
lpfield_describe_specs(char *buf, size_t cap, size_t *len, const lpfield_spec *specs, int n_specs,
					   const char *added)
{
	lpfield_describe_put(buf, cap, len, "{");
	for (int i = 0; i < n_specs; i++)
	{
		lpfield_describe_put(buf, cap, len, i > 0 ? ", \"" : "\"");
		lpfield_describe_put(buf, cap, len, specs[i].key);
		lpfield_describe_put(buf, cap, len, "\"");
	}
	lpfield_describe_put(buf, cap, len, ", ");
	lpfield_describe_put(buf, cap, len, added);
	lpfield_describe_put(buf, cap, len, "}");
}

size_t
lpfield_describe_body(lp_kind kind, char *buf, size_t cap)
{
	size_t		len = 0;

	if (cap > 0)
		buf[0] = '\0';
	switch (kind)
	{
		case LP_TRANSACTION:
			lpfield_describe_specs(buf, cap, &len, current_txn_fields, N_SPECS(current_txn_fields),
								   "\"" LEGACY_KEY "\": false");
			lpfield_describe_put(buf, cap, &len, ", or legacy ");
			lpfield_describe_specs(buf, cap, &len, legacy_txn_fields, N_SPECS(legacy_txn_fields),
								   "\"" LEGACY_KEY "\": true");
			break;
		case LP_BALANCE_ERROR:
			lpfield_describe_specs(buf, cap, &len, balance_error_fields, N_SPECS(balance_error_fields),
								   "\"" LINK_KEY "\"");
			break;
		case LP_NEGATIVE_BALANCE_REJECTION:
			lpfield_describe_specs(buf, cap, &len, rejection_fields, N_SPECS(rejection_fields),
								   "\"" MESSAGE_KEY "\"");
			break;
		default:
			break;
	}
	return len;
}

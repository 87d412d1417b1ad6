/*
 * balance.h: exact decimal balance math for reconciliation and its rules
 * (net = amount - vat; DEBIT expects old - net, CREDIT old + net).
 *
 * Plain C, no PostgreSQL headers. Amounts are fixed-point integers
 * (__int128 scaled by 10^18): exact for every value with at most 18
 * decimals and an absolute value below 10^20. Anything else (more
 * decimals, larger values, NaN, overflow of a sum) is reported as a status,
 * never rounded silently.
 */
#ifndef CALO_BALANCE_H
#define CALO_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef __int128 bal_dec;

#define BAL_SCALE_DIGITS 18
/* |value| must stay below 10^20 (10^38 scaled), a margin under INT128_MAX. */
#define BAL_FORMAT_MAX 48		/* buffer size for bal_format */

typedef enum bal_status
{
	BAL_OK = 0,
	BAL_SYNTAX,					/* not a decimal number */
	BAL_OVERFLOW,				/* |value| >= 10^20, or a sum left the range */
	BAL_TOO_PRECISE,			/* a nonzero digit beyond 18 decimals */
	BAL_SPECIAL					/* NaN or infinity */
} bal_status;

const char *bal_status_name(bal_status status);

/* Parses [+-]digits[.digits] (as numeric_out prints); NaN/Infinity give BAL_SPECIAL. */
bal_status bal_parse(const char *text, size_t len, bal_dec *out);

/* Value from base-10000 digits as PostgreSQL's numeric stores them:
 * value = sum digits[i] * 10000^(weight - i), negated when negative. */
bal_status bal_from_nbase(const uint16_t *digits, int ndigits, int weight,
						  bool negative, bal_dec *out);

/* Shortest exact decimal text (no trailing zeros); returns its length. */
int			bal_format(bal_dec value, char *buf);

bal_status	bal_add(bal_dec a, bal_dec b, bal_dec *out);
bal_status	bal_sub(bal_dec a, bal_dec b, bal_dec *out);
bal_dec		bal_abs(bal_dec a);
int			bal_cmp(bal_dec a, bal_dec b);

/* Half a minor unit: 0.5 for 0 decimals, 0.005 for 2, 0.0005 for 3.
 * minor_unit outside 0..18 falls back to 2 (the documented default). */
bal_dec		bal_tolerance(int minor_unit);

/* The decimals a currency is checked and shown with: minor_unit, or
 * BAL_DEFAULT_MINOR_UNIT outside 0..18 (an unknown currency). */
int			bal_minor_unit(int minor_unit);

#define BAL_DEFAULT_MINOR_UNIT 2

/* Kinds of transaction (txn_type). */
typedef enum bal_type
{
	BAL_LEGACY = 0,				/* NULL type: direction of new - old */
	BAL_DEBIT,
	BAL_CREDIT
} bal_type;

/* Kinds of finding, in the order they are reported for one transaction. */
typedef enum bal_finding
{
	BAL_NONE = 0,
	BAL_CHAIN,					/* old_balance != previous new_balance, >= tolerance */
	BAL_CHAIN_DRIFT,			/* nonzero chain difference below tolerance */
	BAL_ARITHMETIC,				/* new_balance != expected, >= tolerance */
	BAL_DRIFT,					/* nonzero arithmetic difference below tolerance */
	BAL_OUT_OF_RANGE,			/* a value the exact math cannot represent */
	BAL_OVERDRAFT				/* new_balance < 0: reported, not a break */
} bal_finding;

const char *bal_finding_name(bal_finding finding);
/* The finding of that name; BAL_NONE for any other text. */
bal_finding bal_finding_from_name(const char *name, size_t len);
bool		bal_finding_is_break(bal_finding finding);

typedef struct bal_check
{
	bal_finding finding;
	bal_dec		expected;
	bal_dec		actual;
	bal_dec		difference;		/* actual - expected */
} bal_check;

/* The legacy direction rule: a row without a type is a credit when its
 * balance did not go down. new_vs_old is the sign of new_balance - old_balance. */
bool		bal_is_credit(bal_type type, int new_vs_old);

/* The overdraft rule, from the sign of new_balance. */
bool		bal_is_overdraft(int new_balance_sign);

/* Classifies a difference against the tolerance: break, drift or none. */
bal_finding bal_classify(bal_dec difference, bal_dec tolerance,
						 bal_finding break_kind, bal_finding drift_kind);

/* Arithmetic rule of one transaction (net = amount - vat). */
bal_check	bal_check_arithmetic(bal_type type, bal_dec amount, bal_dec vat,
								 bal_dec old_balance, bal_dec new_balance,
								 bal_dec tolerance);

/* Chain rule: old_balance against the previous new_balance. */
bal_check	bal_check_chain(bal_dec prev_new_balance, bal_dec old_balance,
							bal_dec tolerance);

/*
 * Per-user chain walk. Feed one user's transactions in chain order
 * (logged_at, then txn_id); bal_walk_init starts the next user.
 */
typedef struct bal_walk
{
	bool		has_prev;		/* a previous transaction was seen */
	bool		prev_valid;		/* and its new_balance is representable */
	bal_dec		prev_new_balance;
	bool		had_break;		/* a break was already reported for this user */
} bal_walk;

void		bal_walk_init(bal_walk *walk);

/* Chain check of the next transaction (BAL_NONE for the user's first one or
 * after an unrepresentable predecessor); valid=false when this row's
 * balances are not representable: it then only becomes the new predecessor. */
bal_check	bal_walk_chain(bal_walk *walk, bool valid, bal_dec old_balance,
						   bal_dec new_balance, bal_dec tolerance);

/* Call for every finding of the transaction in report order; true when it
 * is the user's first break. */
bool		bal_walk_first_break(bal_walk *walk, bal_finding finding);

#endif

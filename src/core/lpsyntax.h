/*
 * lpsyntax.h: what the log parser's two grammars of nested values (strict
 * JSON, jsonstrict.c; Node object literals, nodelit.c) share: how a syntax
 * error is told, and the check for a member name written twice in an object.
 */
#ifndef CALO_LPSYNTAX_H
#define CALO_LPSYNTAX_H

#include <stdbool.h>
#include <stddef.h>

#include "lptext.h"

typedef enum lpsyntax_kind
{
	LPSYNTAX_NONE = 0,
	LPSYNTAX_EOF,				/* the text ended inside a value: truncated */
	LPSYNTAX_ERROR
} lpsyntax_kind;

typedef struct lpsyntax_error
{
	lpsyntax_kind kind;
	const char *at;
	const char *what;
	const char *name;			/* what it is about (a key), shown quoted; NULL if none */
	size_t		name_len;
} lpsyntax_error;

static inline bool
lpsyntax_fail(lpsyntax_error *e, lpsyntax_kind kind, const char *at, const char *what)
{
	if (e->kind == LPSYNTAX_NONE)
	{
		e->kind = kind;
		e->at = at;
		e->what = what;
		e->name = NULL;
		e->name_len = 0;
	}
	return false;
}

/* the syntax error of a \u escape at `at` that lptext_decode_u() refused with st */
static inline bool
lpsyntax_fail_u_escape(lpsyntax_error *e, lptext_u_status st, const char *at)
{
	if (st == LPTEXT_U_TRUNCATED)
		return lpsyntax_fail(e, LPSYNTAX_EOF, at, "unterminated \\u escape");
	return lpsyntax_fail(e, LPSYNTAX_ERROR, at, "bad \\u escape");
}

/* a member name in an object: where its text lies (in some buffer) and where it was read */
typedef struct lpsyntax_key
{
	size_t		off;
	size_t		len;
	const char *src;			/* the name as written in the input */
	size_t		src_len;
} lpsyntax_key;

/*
 * Index of a key in keys[0..n) (texts at base + off) equal to an earlier
 * one, or -1 when all differ; -2 when out of memory.
 */
long		lpsyntax_duplicate_key(const char *base, const lpsyntax_key *keys, size_t n);

#endif							/* CALO_LPSYNTAX_H */

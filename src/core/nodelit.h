/*
 * nodelit.h: JavaScript object literals as Node's console.log and
 * util.inspect print them (plain C core): keys bare or quoted, strings in
 * ', " or ` with JavaScript escapes (\x41, \u{1F600}, \0, line
 * continuations), "'a' +\n 'b'" continuations of long strings, undefined,
 * trailing commas, a class name before an object (Foo { ... }).  The parse
 * is a tree of nodes in the result's scratch space (lp_result.priv_nodes,
 * strings in priv_scratch); numbers stay tokens, checked when used (lpnum.h).
 */
#ifndef CALO_NODELIT_H
#define CALO_NODELIT_H

#include "logparse.h"
#include "lpsyntax.h"

typedef enum nodelit_type
{
	NODELIT_OBJECT,
	NODELIT_ARRAY,
	NODELIT_STRING,
	NODELIT_NUMBER,				/* any number-looking token, checked when used */
	NODELIT_TRUE,
	NODELIT_FALSE,
	NODELIT_NULL,
	NODELIT_UNDEFINED,
	NODELIT_IDENT				/* any other bare word (NaN, Infinity, Object, ...) */
} nodelit_type;

typedef struct nodelit_node
{
	nodelit_type type;
	int			first;			/* first child of an object or array, -1 */
	int			next;			/* next sibling, -1 */
	size_t		key_off;		/* member name, in the scratch buffer */
	size_t		key_len;
	const char *src;			/* where the value starts in the input */
	size_t		src_len;		/* token length of numbers and bare words */
	size_t		str_off;		/* decoded string, in the scratch buffer */
	size_t		str_len;
	bool		unstorable;		/* the string holds U+0000 or a lone surrogate */
	bool		key_unstorable; /* the same of its member name */
	const char *key_src;		/* member name as written */
	size_t		key_src_len;
} nodelit_node;

/*
 * Parses s[0..n) as one object literal (whitespace around allowed) into the
 * node buffer of res (cleared first).  Returns the root node or -1 (*err
 * says why; *oom is set when memory ran out).
 */
int			nodelit_parse_object(lp_result *res, const char *s, size_t n, lpsyntax_error *err, bool *oom);

/* the member key of object node obj, or -1 */
int			nodelit_get(const lp_result *res, int obj, const char *key);

/* writes a node as JSON: numbers as written, undefined as null, bare words as strings */
void		nodelit_emit(lp_result *res, lp_buf *out, int id);

#endif							/* CALO_NODELIT_H */

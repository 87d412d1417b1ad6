/*
 * nodelit.c: JavaScript object literals of Node's console output (plain C
 * core); see nodelit.h.
 */
#include "nodelit.h"
#include "lpbuf.h"
#include "lpnum.h"
#include "lptext.h"

#include <stdlib.h>
#include <string.h>

typedef struct nodelit_parser
{
	const char *p;
	const char *end;
	lp_result  *res;			/* nodes and scratch live there */
	lpsyntax_error err;
	bool		oom;
} nodelit_parser;

static nodelit_node *
nodelit_nodes(nodelit_parser *ps)
{
	return (nodelit_node *) ps->res->priv_nodes;
}

static int
nodelit_new_node(nodelit_parser *ps, nodelit_type type, const char *src)
{
	lp_result  *r = ps->res;
	nodelit_node *n;

	if (r->priv_n_nodes == r->priv_cap_nodes)
	{
		size_t		cap = r->priv_cap_nodes ? r->priv_cap_nodes * 2 : 64;
		void	   *p = (cap < (size_t) INT32_MAX) ? realloc(r->priv_nodes, cap * sizeof(nodelit_node)) : NULL;

		if (p == NULL)
		{
			ps->oom = true;
			return -1;
		}
		r->priv_nodes = p;
		r->priv_cap_nodes = cap;
	}
	n = &nodelit_nodes(ps)[r->priv_n_nodes];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->first = n->next = -1;
	n->src = src;
	return (int) r->priv_n_nodes++;
}

static void
nodelit_skip_ws(nodelit_parser *ps)
{
	while (ps->p < ps->end && lptext_is_space(*ps->p))
		ps->p++;
}

/*
 * Decodes the quoted string at ps->p (quote ', " or `) onto the end of the
 * scratch buffer, JavaScript escapes included; sets *unstorable when the
 * value holds U+0000 or a lone surrogate (written as U+FFFD), which jsonb
 * cannot hold.
 */
static bool
nodelit_string_part(nodelit_parser *ps, bool *unstorable)
{
	lp_buf	   *sb = &ps->res->priv_scratch;
	char		quote = *ps->p;
	const char *s = ps->p + 1;
	const char *end = ps->end;

	for (;;)
	{
		const char *run = s;

		while (s < end && *s != quote && *s != '\\' && *s != '\n' && *s != '\r' && *s != '\0')
			s++;
		lpbuf_put(sb, run, (size_t) (s - run));
		if (s >= end)
			return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, s, "unterminated string");
		if (*s == quote)
			break;
		if (*s == '\0')
		{
			*unstorable = true;
			lpbuf_putc(sb, '\0');
			s++;
			continue;
		}
		if (*s == '\n' || *s == '\r')
		{
			if (quote != '`')
				return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, s, "line break inside a quoted string");
			lpbuf_putc(sb, '\n');
			s = lptext_next_line(s, end);
			continue;
		}
		if (end - s < 2)
			return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, s, "unterminated escape");
		s++;
		switch (*s)
		{
			case 'n':
				lpbuf_putc(sb, '\n');
				s++;
				break;
			case 't':
				lpbuf_putc(sb, '\t');
				s++;
				break;
			case 'r':
				lpbuf_putc(sb, '\r');
				s++;
				break;
			case 'b':
				lpbuf_putc(sb, '\b');
				s++;
				break;
			case 'f':
				lpbuf_putc(sb, '\f');
				s++;
				break;
			case 'v':
				lpbuf_putc(sb, '\v');
				s++;
				break;
			case '0':
				lpbuf_putc(sb, '\0');
				*unstorable = true;
				s++;
				break;
			case '\r':
				s++;
				if (s < end && *s == '\n')
					s++;
				break;			/* line continuation */
			case '\n':
				s++;
				break;
			case 'x':
				{
					long		v;

					if (end - s < 3)
						return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, s, "unterminated \\x escape");
					v = lptext_hex_run(s + 1, 2);
					if (v < 0)
						return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, s, "bad \\x escape");
					if (v == 0)
						*unstorable = true;
					lpbuf_put_utf8(sb, (unsigned long) v);
					s += 3;
					break;
				}
			case 'u':
				{
					long		cp;
					const char *next;

					/* s is at the 'u': the escape begins at the backslash before it */
					lptext_u_status st = lptext_decode_u(s - 1, end, LPTEXT_U_JAVASCRIPT, &cp, &next);

					if (st != LPTEXT_U_OK)
						return lpsyntax_fail_u_escape(&ps->err, st, s);
					if (cp >= 0xD800 && cp <= 0xDFFF)
					{
						cp = 0xFFFD;	/* lone surrogate */
						*unstorable = true;
					}
					if (cp == 0)
						*unstorable = true;
					lpbuf_put_utf8(sb, (unsigned long) cp);
					s = next;
					break;
				}
			default:
				/* \\ \' \" \` and any other character stand for themselves */
				lpbuf_putc(sb, *s);
				s++;
				break;
		}
	}
	ps->p = s + 1;
	return true;
}

/* a string, with Node's "'abc' +\n 'def'" continuation of long strings */
static int
nodelit_string(nodelit_parser *ps)
{
	int			id = nodelit_new_node(ps, NODELIT_STRING, ps->p);
	size_t		start = ps->res->priv_scratch.len;
	bool		unstorable = false;

	if (id < 0 || !nodelit_string_part(ps, &unstorable))
		return -1;
	for (;;)
	{
		const char *save = ps->p;

		nodelit_skip_ws(ps);
		if (ps->p < ps->end && *ps->p == '+')
		{
			ps->p++;
			nodelit_skip_ws(ps);
			if (ps->p < ps->end && (*ps->p == '\'' || *ps->p == '"' || *ps->p == '`'))
			{
				if (!nodelit_string_part(ps, &unstorable))
					return -1;
				continue;
			}
		}
		ps->p = save;
		break;
	}
	nodelit_nodes(ps)[id].str_off = start;
	nodelit_nodes(ps)[id].str_len = ps->res->priv_scratch.len - start;
	nodelit_nodes(ps)[id].unstorable = unstorable;
	return id;
}

static int	nodelit_value(nodelit_parser *ps, int depth);

static bool
nodelit_key(nodelit_parser *ps, size_t *off, size_t *len, bool *unstorable)
{
	lp_buf	   *sb = &ps->res->priv_scratch;

	*off = sb->len;
	if (ps->p >= ps->end)
		return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, ps->p, "unterminated object");
	if (*ps->p == '\'' || *ps->p == '"' || *ps->p == '`')
	{
		if (!nodelit_string_part(ps, unstorable))
			return false;
	}
	else
	{
		const char *s = ps->p;

		while (ps->p < ps->end && lptext_is_ident_char(*ps->p))
			ps->p++;
		if (ps->p == s)
			return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, s, "expected a key");
		lpbuf_put(sb, s, (size_t) (ps->p - s));
	}
	*len = sb->len - *off;
	return true;
}

/* the object id is complete: refuses a member name that appears twice */
static bool
nodelit_check_keys(nodelit_parser *ps, int id)
{
	lpsyntax_key small[16];
	lpsyntax_key *keys = small;
	size_t		n = 0;
	long		dup;

	for (int c = nodelit_nodes(ps)[id].first; c >= 0; c = nodelit_nodes(ps)[c].next)
		n++;
	if (n < 2 || ps->res->priv_scratch.failed)
		return true;
	if (n > 16 && (keys = malloc(n * sizeof(lpsyntax_key))) == NULL)
	{
		ps->oom = true;
		return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, ps->p, "out of memory");
	}
	n = 0;
	for (int c = nodelit_nodes(ps)[id].first; c >= 0; c = nodelit_nodes(ps)[c].next)
	{
		const nodelit_node *cn = &nodelit_nodes(ps)[c];

		keys[n].off = cn->key_off;
		keys[n].len = cn->key_len;
		keys[n].src = cn->key_src;
		keys[n].src_len = cn->key_src_len;
		n++;
	}
	dup = lpsyntax_duplicate_key(ps->res->priv_scratch.data, keys, n);
	if (dup == -2)
	{
		ps->oom = true;
		lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, ps->p, "out of memory");
	}
	else if (dup >= 0)
	{
		lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, keys[dup].src, "duplicate key");
		ps->err.name = keys[dup].src;
		ps->err.name_len = keys[dup].src_len;
	}
	if (keys != small)
		free(keys);
	return dup == -1;
}

static int
nodelit_container(nodelit_parser *ps, int depth, char close)
{
	bool		is_object = close == '}';
	int			id,
				last = -1;

	if (depth >= LP_MAX_DEPTH)
		return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, ps->p, "nesting too deep"), -1;
	id = nodelit_new_node(ps, is_object ? NODELIT_OBJECT : NODELIT_ARRAY, ps->p);
	if (id < 0)
		return -1;
	ps->p++;
	for (;;)
	{
		size_t		key_off = 0,
					key_len = 0,
					key_src_len = 0;
		const char *key_src = NULL;
		bool		key_unstorable = false;
		int			child;

		nodelit_skip_ws(ps);
		if (ps->p >= ps->end)
			return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, ps->p, is_object ? "unterminated object" : "unterminated array"), -1;
		if (*ps->p == close)	/* empty, or after a trailing comma */
		{
			ps->p++;
			return (!is_object || nodelit_check_keys(ps, id)) ? id : -1;
		}
		if (is_object)
		{
			key_src = ps->p;
			if (!nodelit_key(ps, &key_off, &key_len, &key_unstorable))
				return -1;
			key_src_len = (size_t) (ps->p - key_src);
			nodelit_skip_ws(ps);
			if (ps->p >= ps->end)
				return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, ps->p, "unterminated object"), -1;
			if (*ps->p != ':')
				return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, ps->p, "expected ':'"), -1;
			ps->p++;
		}
		child = nodelit_value(ps, depth + 1);
		if (child < 0)
			return -1;
		nodelit_nodes(ps)[child].key_off = key_off;
		nodelit_nodes(ps)[child].key_len = key_len;
		nodelit_nodes(ps)[child].key_src = key_src;
		nodelit_nodes(ps)[child].key_src_len = key_src_len;
		nodelit_nodes(ps)[child].key_unstorable = key_unstorable;
		if (last < 0)
			nodelit_nodes(ps)[id].first = child;
		else
			nodelit_nodes(ps)[last].next = child;
		last = child;
		nodelit_skip_ws(ps);
		if (ps->p >= ps->end)
			return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, ps->p, is_object ? "unterminated object" : "unterminated array"), -1;
		if (*ps->p == ',')
			ps->p++;
		else if (*ps->p == close)
		{
			ps->p++;
			return (!is_object || nodelit_check_keys(ps, id)) ? id : -1;
		}
		else
			return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, ps->p, is_object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
	}
}

static int
nodelit_value(nodelit_parser *ps, int depth)
{
	const char *s;
	char		c;

	nodelit_skip_ws(ps);
	if (ps->p >= ps->end)
		return lpsyntax_fail(&ps->err, LPSYNTAX_EOF, ps->p, "missing value"), -1;
	s = ps->p;
	c = *s;
	if (c == '{')
		return nodelit_container(ps, depth, '}');
	if (c == '[')
		return nodelit_container(ps, depth, ']');
	if (c == '\'' || c == '"' || c == '`')
		return nodelit_string(ps);
	if (lptext_is_digit(c) || c == '-' || c == '+' || c == '.')
	{
		int			id;

		ps->p++;
		while (ps->p < ps->end && (lptext_is_ident_char(*ps->p) || *ps->p == '.' ||
								   ((*ps->p == '+' || *ps->p == '-') && (ps->p[-1] == 'e' || ps->p[-1] == 'E'))))
			ps->p++;
		id = nodelit_new_node(ps, NODELIT_NUMBER, s);
		if (id >= 0)
			nodelit_nodes(ps)[id].src_len = (size_t) (ps->p - s);
		return id;
	}
	if (lptext_is_ident_char(c))
	{
		size_t		n;
		nodelit_type type = NODELIT_IDENT;
		int			id;

		while (ps->p < ps->end && lptext_is_ident_char(*ps->p))
			ps->p++;
		n = (size_t) (ps->p - s);
		if (n == 4 && memcmp(s, "true", 4) == 0)
			type = NODELIT_TRUE;
		else if (n == 5 && memcmp(s, "false", 5) == 0)
			type = NODELIT_FALSE;
		else if (n == 4 && memcmp(s, "null", 4) == 0)
			type = NODELIT_NULL;
		else if (n == 9 && memcmp(s, "undefined", 9) == 0)
			type = NODELIT_UNDEFINED;
		else
		{
			/* a class name before an object, as Node prints instances: Foo { ... } */
			const char *save = ps->p;

			nodelit_skip_ws(ps);
			if (ps->p < ps->end && *ps->p == '{')
				return nodelit_container(ps, depth, '}');
			ps->p = save;
		}
		id = nodelit_new_node(ps, type, s);
		if (id >= 0)
			nodelit_nodes(ps)[id].src_len = n;
		return id;
	}
	return lpsyntax_fail(&ps->err, LPSYNTAX_ERROR, s, "unexpected character"), -1;
}

int
nodelit_parse_object(lp_result *res, const char *s, size_t n, lpsyntax_error *err, bool *oom)
{
	nodelit_parser ps = {s, s + n, res, {LPSYNTAX_NONE, NULL, NULL, NULL, 0}, false};
	int			root = -1;

	res->priv_n_nodes = 0;
	res->priv_scratch.len = 0;
	nodelit_skip_ws(&ps);
	if (ps.p < ps.end && *ps.p != '{')
		lpsyntax_fail(&ps.err, LPSYNTAX_ERROR, ps.p, "expected '{'");
	else
		root = nodelit_value(&ps, 0);
	if (root >= 0)
	{
		nodelit_skip_ws(&ps);
		if (ps.p < ps.end)
		{
			lpsyntax_fail(&ps.err, LPSYNTAX_ERROR, ps.p, "text after the object");
			root = -1;
		}
	}
	if (ps.oom || res->priv_scratch.failed)
		*oom = true;
	*err = ps.err;
	return root;
}

int
nodelit_get(const lp_result *res, int obj, const char *key)
{
	const nodelit_node *nodes = (const nodelit_node *) res->priv_nodes;
	size_t		klen = strlen(key);

	if (obj < 0 || nodes[obj].type != NODELIT_OBJECT)
		return -1;
	for (int c = nodes[obj].first; c >= 0; c = nodes[c].next)
		if (nodes[c].key_len == klen && memcmp(res->priv_scratch.data + nodes[c].key_off, key, klen) == 0)
			return c;
	return -1;
}

void
nodelit_emit(lp_result *res, lp_buf *out, int id)
{
	const nodelit_node *n = &((const nodelit_node *) res->priv_nodes)[id];

	switch (n->type)
	{
		case NODELIT_OBJECT:
		case NODELIT_ARRAY:
			{
				bool		first = true;

				lpbuf_putc(out, n->type == NODELIT_OBJECT ? '{' : '[');
				for (int c = n->first; c >= 0; c = ((const nodelit_node *) res->priv_nodes)[c].next)
				{
					const nodelit_node *cn = &((const nodelit_node *) res->priv_nodes)[c];

					if (!first)
						lpbuf_putc(out, ',');
					first = false;
					if (n->type == NODELIT_OBJECT)
					{
						lpbuf_put_json_string(out, res->priv_scratch.data + cn->key_off, cn->key_len);
						lpbuf_putc(out, ':');
					}
					nodelit_emit(res, out, c);
				}
				lpbuf_putc(out, n->type == NODELIT_OBJECT ? '}' : ']');
				break;
			}
		case NODELIT_STRING:
			lpbuf_put_json_string(out, res->priv_scratch.data + n->str_off, n->str_len);
			break;
		case NODELIT_NUMBER:
			if (!lpnum_put(out, n->src, n->src_len, false))
				lpbuf_put_json_string(out, n->src, n->src_len);
			break;
		case NODELIT_TRUE:
			lpbuf_lit(out, "true");
			break;
		case NODELIT_FALSE:
			lpbuf_lit(out, "false");
			break;
		case NODELIT_NULL:
		case NODELIT_UNDEFINED:
			lpbuf_lit(out, "null");
			break;
		case NODELIT_IDENT:
			lpbuf_put_json_string(out, n->src, n->src_len);
			break;
	}
}

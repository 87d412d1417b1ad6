/*
 * logparse.h: parser of balance-sync CloudWatch log exports (plain C core).
 *
 * lp_parse() splits one log text into events, classifies each
 * one into a kind and builds a JSON body for it.  It never reads outside the
 * given bytes, keeps no global state (reentrant), bounds its recursion, and
 * every byte it allocates is released by lp_free().  Bodies are always valid
 * JSON in valid UTF-8, whatever the input bytes; numbers keep their source
 * spelling so that no money value ever passes through a double.
 *
 * Events: a line that starts with an export timestamp (YYYY-MM-DDTHH:MM:SS.sssZ)
 * followed by a space or the line end starts an event, whether or not a
 * blank line comes before it (a message without its final newline is
 * followed directly by the next event).  Every other line, blank lines
 * included, belongs to the current event; raw ends at the event's last
 * non-blank line.  Text before the first timestamp is one malformed event
 * (no_timestamp); a timestamp of the right shape but impossible fields
 * starts a malformed event (bad_timestamp).  A line ends at LF, CR LF or a
 * lone CR (old Mac files); in message texts each line end becomes LF.  A
 * UTF-8 byte order mark at the very start of the text is skipped.
 *
 * Damaged text: a line that holds the start of another log line (an
 * application header <ts> TAB, a TAB <LEVEL> TAB, a Lambda START / END /
 * REPORT / INIT_ line, or a data message such as "Start syncing the
 * balance") past its own start, e.g. two lines run together, is one
 * malformed event (malformed_event, intended_kind the data kind found inside
 * if any): nothing it swallowed passes for an informational event.
 * Successfully parsed data events and metrics are exempt (their text is
 * wholly accounted for by the object they hold).
 *
 * Limits (one home: the constants below): an event longer than
 * LP_MAX_EVENT_BYTES is malformed (too_large) without being parsed, and its
 * raw keeps only its first LP_RAW_EXCERPT_BYTES (cut at a character start);
 * raw_bytes keeps the full size.  A request id, SQS message id or string
 * field of a data event (id, userId, type, source, action, currency,
 * transactionId) longer than LP_MAX_FIELD_BYTES, and a number longer than
 * LP_MAX_NUMBER_LEN characters or with an exponent beyond +-LP_MAX_EXPONENT
 * make the event malformed (out_of_range).
 *
 * Strings: a string field whose value holds U+0000 or a lone UTF-16
 * surrogate (which jsonb cannot store) is bad_field; duplicate keys in an
 * object literal make the event malformed_event.  JSON inside a metadata
 * string that holds \u0000, a lone surrogate escape or a duplicate key is not
 * parsed: metadata stays that JSON text, a string, escapes as written.
 *
 * Field rules (one home: the tables of field rules in lpfield.c, one per
 * data kind; SQL only routes the events to their tables): every string field
 * of a data event is a non-empty string; ids and userId are required; the
 * current form's type is required and CREDIT or DEBIT
 * (lp_transaction_type_valid); currency is three capital letters
 * (lp_currency_code_valid); money (amount, vat, balances) is a number of
 * magnitude below 10^LP_MONEY_LIMIT_POWER (lp_money_in_range), else
 * out_of_range.  A missing required key is missing_field, a value that breaks
 * its rule bad_field (out_of_range for sizes and money); the malformed body
 * then names the key ("field") and, when the event's own id was readable,
 * carries it ("txn_id").
 *
 * Number spelling: the JSON grammar, plus two harmless JavaScript spellings
 * that are normalised (a leading '+' is dropped, a missing integer part
 * becomes 0: '.5' -> 0.5).  NaN, Infinity, hex, octal-looking leading zeros
 * and '5.' are no numbers (bad_field); a number longer than LP_MAX_NUMBER_LEN
 * characters or with an exponent beyond +-LP_MAX_EXPONENT (PostgreSQL's
 * numeric limit) is out_of_range.
 *
 * The parser's files, one job each (a prefix per file names its functions):
 *   logparse.c    lp_parse(), lp_free(): the text split into events, the
 *                 message ids and balance error links of the second pass
 *   lpevent.c     one event: its header and the malformed bodies (lpevent_)
 *   lpkind.c      the kinds: recognition, informational and platform bodies,
 *                 lines run together (lpkind_)
 *   lpfield.c     the data events and the field rules of their kinds (lpfield_)
 *   nodelit.c     grammar: Node's JavaScript object literals (nodelit_)
 *   jsonstrict.c  grammar: strict JSON, validated and re-emitted (jsonstrict_)
 *   lpjson.c      grammar: the token reader of bodies (lp_json_, below)
 *   lpsyntax.c    what two grammars share: syntax errors, duplicate keys (lpsyntax_)
 *   lpnum.c       numbers and timestamps (lpnum_)
 *   lpbuf.c       the growable buffer and its JSON string writer (lpbuf_)
 *   lptext.c      characters, lines, UTF-8 and the one \u decoder (lptext_)
 */
#ifndef CALO_LOGPARSE_H
#define CALO_LOGPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_MAX_DEPTH 64			/* deeper object/array nesting is malformed */
#define LP_MAX_EVENT_BYTES ((size_t) 1 << 20)	/* longer events: too_large */
#define LP_RAW_EXCERPT_BYTES ((size_t) 4096)	/* raw kept of a too_large event */
#define LP_MAX_FIELD_BYTES 256	/* ids and string fields of data events */
#define LP_MAX_NUMBER_LEN 400	/* characters of one number */
#define LP_MAX_EXPONENT 1000	/* PostgreSQL numeric refuses larger exponents */
#define LP_MONEY_LIMIT_POWER 15	/* money of 10^15 or more (any currency) is no wallet balance */

/* length of the UTF-8 byte order mark at s (3), or 0 when s does not start with one */
static inline size_t
lp_bom_length(const char *s, size_t n)
{
	return (n >= 3 && (unsigned char) s[0] == 0xEF && (unsigned char) s[1] == 0xBB &&
			(unsigned char) s[2] == 0xBF) ? 3 : 0;
}

typedef enum lp_kind
{
	LP_KIND_NONE = -1,
	/* platform lines */
	LP_START = 0,
	LP_END,
	LP_REPORT,
	LP_INIT_START,
	LP_INIT_REPORT,
	LP_METRIC,
	LP_PLATFORM_TEXT,
	/* application lines */
	LP_PROCESSING_MESSAGE,
	LP_TRANSACTION,
	LP_BALANCE_ERROR,
	LP_NEGATIVE_BALANCE_REJECTION,
	LP_SKIP,
	LP_BALANCE_UPDATED,
	LP_TRANSACTION_LOCK,
	LP_TRANSACTION_JSON,
	LP_RECORD_BODY,
	LP_SYNC_ERROR,
	LP_UNCAUGHT_EXCEPTION,
	LP_INVOKE_ERROR,
	LP_APP_LOG,
	/* anything that could not be parsed */
	LP_MALFORMED,
	LP_KIND_COUNT
} lp_kind;

/* A piece of the input text; ptr == NULL means "absent" (SQL NULL). */
typedef struct lp_slice
{
	const char *ptr;
	size_t		len;
} lp_slice;

typedef struct lp_event
{
	int			event_no;		/* 1-based position in the text */
	lp_kind		kind;
	lp_slice	raw;			/* the event exactly as in the input, without its final line end
								 * (too_large: its first LP_RAW_EXCERPT_BYTES) */
	size_t		raw_bytes;		/* full length of the event text */
	lp_slice	export_ts;		/* "YYYY-MM-DDTHH:MM:SS.sssZ" or absent */
	lp_slice	app_ts;			/* application timestamp or absent */
	lp_slice	request_id;		/* absent when missing or "undefined" */
	lp_slice	level;			/* INFO, ERROR, ...; absent for platform lines */
	lp_slice	message_id;		/* SQS message being processed by the request, or absent */
	bool		has_logged_at;
	int64_t		logged_at_us;	/* app timestamp if any, else export timestamp: microseconds since 1970-01-01T00:00:00Z */
	/* LP_MALFORMED only: */
	const char *reason;			/* no_timestamp, bad_timestamp, truncated_event, malformed_event,
								 * missing_field, bad_field, out_of_range, too_large */
	lp_kind		intended_kind;	/* the kind the event would have had, or LP_KIND_NONE */
	/* JSON body, NUL-terminated, owned by the result; valid after lp_parse() returns LP_OK */
	const char *body;
	size_t		body_len;
	/* private to the parser */
	size_t		priv_body_off;
	size_t		priv_txn_off;	/* LP_TRANSACTION: JSON string of its id inside the bodies buffer */
	size_t		priv_txn_len;
} lp_event;

/* private growable byte buffer */
typedef struct lp_buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed: the buffer stopped growing */
} lp_buf;

typedef struct lp_result
{
	lp_event   *events;
	size_t		n_events;
	/* private to the parser: everything it allocates hangs here, so that
	 * lp_free() releases it even when a progress callback never returned */
	size_t		priv_cap_events;
	lp_buf		priv_bodies;
	lp_buf		priv_scratch;
	void	   *priv_nodes;
	size_t		priv_n_nodes;
	size_t		priv_cap_nodes;
} lp_result;

typedef struct lp_options
{
	/*
	 * Called every few hundred events while parsing.  It may not return
	 * (e.g. a PostgreSQL query cancel); the caller must then still call
	 * lp_free() on the result, which is always in a releasable state.
	 */
	void		(*progress) (void *arg);
	void	   *progress_arg;
} lp_options;

typedef enum lp_status
{
	LP_OK = 0,
	LP_ENOMEM = 1,				/* out of memory: the result holds nothing useful */
	LP_ETOOBIG = 2				/* more than INT32_MAX events */
} lp_status;

/*
 * Parses text[0..len) (any bytes; NULs included) into out.  out needs no
 * initialisation; call lp_free(out) afterwards whatever the status.
 * opts may be NULL.
 */
lp_status	lp_parse(const char *text, size_t len, const lp_options *opts, lp_result *out);
void		lp_free(lp_result *res);

/*
 * The value rules of data fields, also used by the tables' CHECK constraints
 * (through calo_recon.is_currency_code and calo_recon.is_transaction_type), so
 * that COPY and the parser share one definition.
 */
bool		lp_currency_code_valid(const char *s, size_t n);	/* ^[A-Z]{3}$ */
bool		lp_transaction_type_valid(const char *s, size_t n);	/* CREDIT or DEBIT */

/*
 * number[0..n) is a number the parser accepts (JSON, or its two normalised
 * JavaScript spellings) of magnitude below 10^LP_MONEY_LIMIT_POWER; false
 * for anything else, a malformed or oversized number included.
 */
bool		lp_money_in_range(const char *number, size_t n);

/* snake_case name of a kind ("transaction", ...), NULL for LP_KIND_NONE or out of range */
const char *lp_kind_name(lp_kind kind);

/* its family: platform, application, data, failure or malformed (NULL as above) */
const char *lp_kind_family(lp_kind kind);

/*
 * The members of its body in words, as calo_recon.parse_log_kinds() shows
 * them ("?" = only when present in the log), written NUL-terminated into
 * buf[cap].  Returns the length it needs (without the NUL; output cut when
 * that is >= cap), or 0 for a kind out of range.
 */
size_t		lp_kind_describe_body(lp_kind kind, char *buf, size_t cap);

/*
 * Timestamp "YYYY-MM-DDTHH:MM:SS.sssZ" at s (n bytes available).  Returns 1
 * and sets *unix_us when valid, 0 when it has the shape but impossible fields
 * (month 13, February 30, hour 24, ...), -1 when it is not a timestamp.
 */
int			lp_parse_timestamp(const char *s, size_t n, int64_t *unix_us);

/*
 * Reading a body back as tokens, so that a caller can build a binary JSON
 * value (PostgreSQL's jsonb) without lexing the text again in full.  Bodies
 * are compact canonical JSON: no whitespace, strings in valid UTF-8.  The
 * reader accepts exactly compact strict JSON (one value, no whitespace) and
 * returns LP_JSON_ERROR for anything else, never reading outside the given
 * bytes; a caller may then fall back to a general JSON parser.  Escapes it
 * accepts in strings: \" \\ \/ \b \f \n \r \t and \uXXXX of a code point
 * from U+0001 to U+FFFF outside the surrogates (a body never holds others).
 */
typedef enum lp_json_type
{
	LP_JSON_END = 0,			/* the value is complete and the text over */
	LP_JSON_BEGIN_OBJECT,
	LP_JSON_END_OBJECT,
	LP_JSON_BEGIN_ARRAY,
	LP_JSON_END_ARRAY,
	LP_JSON_KEY,				/* a member name; its value follows */
	LP_JSON_STRING,
	LP_JSON_NUMBER,				/* ptr/len: the number exactly as written */
	LP_JSON_TRUE,
	LP_JSON_FALSE,
	LP_JSON_NULL,
	LP_JSON_ERROR				/* not compact strict JSON (then stays so) */
} lp_json_type;

typedef struct lp_json_token
{
	lp_json_type type;
	const char *ptr;			/* KEY, STRING: between the quotes; NUMBER: the token */
	size_t		len;
	bool		escaped;		/* KEY, STRING: holds escapes, see lp_json_unescape() */
} lp_json_token;

#define LP_JSON_READER_DEPTH 256

typedef struct lp_json_reader
{
	const char *p;
	const char *end;
	int			state;			/* private */
	int			depth;
	char		open[LP_JSON_READER_DEPTH];	/* '{' or '[' of each open container */
} lp_json_reader;

void		lp_json_reader_init(lp_json_reader *r, const char *json, size_t len);
lp_json_type lp_json_next(lp_json_reader *r, lp_json_token *tok);

/*
 * Decodes the escaped string content s[0..n) of a token into dst (at least n
 * bytes: the result is never longer) and returns its length.
 */
size_t		lp_json_unescape(const char *s, size_t n, char *dst);

#endif							/* CALO_LOGPARSE_H */

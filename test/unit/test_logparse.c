/*
 * test_logparse.c: unit tests of the log parser core (src/core/logparse.h).
 * Run by `make -C test/unit run` under ASan + UBSan (leaks included).
 */
#include <stdlib.h>
#include <zlib.h>

#include "logparse.h"
#include "unit.h"
#include "../fuzz/json_check.h"
#include "../fuzz/json_tokens_check.h"

#define SAMPLE_DIR "../data/samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/"
#define SAMPLE_2023 SAMPLE_DIR "2023-12-12-[$LATEST]6ca06496aad7c7c03a53c17641db898e/000000.gz"
#define SAMPLE_2024 SAMPLE_DIR "2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz"

/* an application line of request `rid` */
#define APP(rid, lvl, msg) "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t" rid "\t" lvl "\t" msg "\n\n"
#define RID "537390e5-0fcf-41ca-8e75-2fdf1ece615d"
#define RID2 "3836e865-77bd-491f-b7b1-03df23231e1e"

static lp_result R;

/* parses text into R and checks what holds for every result */
static void
parse_len(const char *text, size_t len)
{
	lp_free(&R);
	CHECK(lp_parse(text, len, NULL, &R) == LP_OK);
	for (size_t i = 0; i < R.n_events; i++)
	{
		const lp_event *ev = &R.events[i];

		CHECK(ev->event_no == (int) i + 1);
		CHECK(ev->body != NULL && strlen(ev->body) == ev->body_len);
		if (!json_check(ev->body, ev->body_len))
		{
			unit_failed++;
			fprintf(stderr, "invalid JSON body of event %d: %s\n", ev->event_no, ev->body);
		}
		if (!json_tokens_roundtrip(ev->body, ev->body_len))
		{
			unit_failed++;
			fprintf(stderr, "token reader does not give back the body of event %d: %s\n", ev->event_no, ev->body);
		}
		CHECK(ev->raw.ptr >= text && ev->raw.ptr + ev->raw.len <= text + len);
		CHECK(lp_kind_name(ev->kind) != NULL);
		CHECK((ev->kind == LP_MALFORMED) == (ev->reason != NULL));
	}
}

static void
parse(const char *text)
{
	parse_len(text, strlen(text));
}

static const lp_event *
ev(size_t i)
{
	static lp_event none;

	if (i < R.n_events)
		return &R.events[i];
	unit_failed++;
	fprintf(stderr, "no event %zu (only %zu)\n", i + 1, R.n_events);
	none.kind = LP_KIND_NONE;
	none.body = "";
	return &none;
}

static char sbuf[4][512];
static int	sidx;

/* a slice as a C string ("(null)" when absent) */
static const char *
S(lp_slice s)
{
	char	   *b = sbuf[sidx++ % 4];

	if (s.ptr == NULL)
		return "(null)";
	snprintf(b, 512, "%.*s", (int) s.len, s.ptr);
	return b;
}

static const char *
K(const lp_event *e)
{
	const char *n = lp_kind_name(e->kind);

	return n ? n : "(none)";
}

static char *
read_gz(const char *path, size_t *len)
{
	gzFile		f = gzopen(path, "rb");
	size_t		cap = 1 << 16,
				n = 0;
	char	   *buf;
	int			got;

	if (f == NULL)
		return NULL;
	buf = malloc(cap);
	while ((got = gzread(f, buf + n, (unsigned) (cap - n))) > 0)
	{
		n += (size_t) got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	gzclose(f);
	*len = n;
	return buf;
}

static int
count_kind(lp_kind k)
{
	int			n = 0;

	for (size_t i = 0; i < R.n_events; i++)
		n += R.events[i].kind == k;
	return n;
}

static void
test_samples(void)
{
	size_t		n1,
				n2;
	char	   *s1 = read_gz(SAMPLE_2023, &n1);
	char	   *s2 = read_gz(SAMPLE_2024, &n2);
	char	   *both,
			   *crlf;
	size_t		ncrlf = 0;
	lp_result	lf;

	CHECK(s1 != NULL && s2 != NULL);
	if (s1 == NULL || s2 == NULL)
		return;

	parse_len(s1, n1);
	CHECK(R.n_events == 47);
	CHECK(count_kind(LP_TRANSACTION) == 5);
	CHECK(count_kind(LP_BALANCE_ERROR) == 4);
	CHECK(count_kind(LP_METRIC) == 4);
	CHECK(count_kind(LP_TRANSACTION_JSON) == 1);
	CHECK(count_kind(LP_SKIP) == 1);
	CHECK(count_kind(LP_PLATFORM_TEXT) == 1);
	CHECK(count_kind(LP_UNCAUGHT_EXCEPTION) == 1);
	CHECK(count_kind(LP_INIT_START) == 1);
	CHECK(count_kind(LP_INIT_REPORT) == 1);
	CHECK(count_kind(LP_MALFORMED) == 0);
	for (size_t i = 0; i < R.n_events; i++)
		if (R.events[i].kind == LP_TRANSACTION)
			CHECK(strstr(R.events[i].body, "\"legacy\":true}") != NULL);

	parse_len(s2, n2);
	CHECK(R.n_events == 83);
	CHECK(count_kind(LP_TRANSACTION) == 10);
	CHECK(count_kind(LP_BALANCE_ERROR) == 2);
	CHECK(count_kind(LP_NEGATIVE_BALANCE_REJECTION) == 1);
	CHECK(count_kind(LP_PROCESSING_MESSAGE) == 11);
	CHECK(count_kind(LP_START) == 14 && count_kind(LP_END) == 14 && count_kind(LP_REPORT) == 14);
	CHECK(count_kind(LP_BALANCE_UPDATED) == 9);
	CHECK(count_kind(LP_SKIP) == 2);
	CHECK(count_kind(LP_SYNC_ERROR) == 1);
	CHECK(count_kind(LP_TRANSACTION_LOCK) == 1);
	CHECK(count_kind(LP_METRIC) == 3);
	CHECK(count_kind(LP_MALFORMED) == 0);

	/* both files one after the other: 130 events (the answer key) */
	both = malloc(n1 + n2);
	memcpy(both, s1, n1);
	memcpy(both + n1, s2, n2);
	parse_len(both, n1 + n2);
	CHECK(R.n_events == 130);
	CHECK(count_kind(LP_TRANSACTION) == 15);
	CHECK(count_kind(LP_BALANCE_ERROR) == 6);

	/* CRLF line ends give the same events and bodies */
	crlf = malloc(2 * n2);
	for (size_t i = 0; i < n2; i++)
	{
		if (s2[i] == '\n')
			crlf[ncrlf++] = '\r';
		crlf[ncrlf++] = s2[i];
	}
	CHECK(lp_parse(s2, n2, NULL, &lf) == LP_OK);
	parse_len(crlf, ncrlf);
	CHECK(R.n_events == lf.n_events);
	for (size_t i = 0; i < R.n_events && i < lf.n_events; i++)
	{
		CHECK(R.events[i].kind == lf.events[i].kind);
		CHECK_STR(R.events[i].body, lf.events[i].body);
		CHECK(R.events[i].raw.ptr[R.events[i].raw.len - 1] != '\r');
	}
	lp_free(&lf);

	/* no final newline: the last event is the same */
	parse_len(s2, n2 - 2);
	CHECK(R.n_events == 83);
	CHECK(ev(82)->kind == LP_REPORT);
	CHECK(strstr(ev(82)->body, "\"max_memory_used_mb\":104") != NULL);

	free(crlf);
	free(both);
	free(s1);
	free(s2);
}

static void
test_platform(void)
{
	parse("2024-01-14T21:00:00.002Z INIT_START Runtime Version: nodejs:20.v14\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:27e9\n\n"
		  "2024-01-14T21:00:00.090Z START RequestId: " RID " Version: $LATEST\n\n"
		  "2024-01-14T21:00:00.216Z END RequestId: " RID "\n\n"
		  "2024-01-14T21:00:00.225Z REPORT RequestId: " RID "\tDuration: 117.45 ms\tBilled Duration: 100 ms\tMemory Size: 1024 MB\tMax Memory Used: 104 MB\tInit Duration: 12.5 ms\t\n"
		  "XRAY TraceId: 1-6579cbfd-8fcd7f4073c1cd2c81f98b52\tSegmentId: e998d0eee4ddf9b9\tSampled: true\t\n\n"
		  "2023-12-12T12:00:01.829Z INIT_REPORT Init Duration: 766.09 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError\n\n"
		  "2023-12-12T12:00:00.272Z {\"_aws\":{\"Timestamp\":1702384510307},\"service\":\"syncBalanceSQS\",\"subBalanceDiscrapancy\":1}\n\n"
		  "2023-12-12T12:00:01.691Z Unknown application error occurred\nRuntime.Unknown\n\n"
		  "2023-12-12T12:00:01.700Z {\"not\":\"a metric\"}\n");
	CHECK(R.n_events == 8);
	CHECK_STR(K(ev(0)), "init_start");
	CHECK_STR(ev(0)->body, "{\"runtime_version\":\"nodejs:20.v14\",\"runtime_version_arn\":\"arn:aws:lambda:us-east-1::runtime:27e9\"}");
	CHECK(ev(0)->request_id.ptr == NULL && ev(0)->level.ptr == NULL && ev(0)->app_ts.ptr == NULL);
	CHECK_STR(K(ev(1)), "start");
	CHECK_STR(S(ev(1)->request_id), RID);
	CHECK_STR(ev(1)->body, "{\"version\":\"$LATEST\"}");
	CHECK_STR(K(ev(2)), "end");
	CHECK_STR(S(ev(2)->request_id), RID);
	CHECK_STR(ev(2)->body, "{}");
	CHECK_STR(K(ev(3)), "report");
	CHECK_STR(S(ev(3)->request_id), RID);
	CHECK_STR(ev(3)->body, "{\"duration_ms\":117.45,\"billed_duration_ms\":100,\"memory_size_mb\":1024,"
			  "\"max_memory_used_mb\":104,\"init_duration_ms\":12.5,\"xray_trace_id\":\"1-6579cbfd-8fcd7f4073c1cd2c81f98b52\","
			  "\"xray_segment_id\":\"e998d0eee4ddf9b9\",\"xray_sampled\":true}");
	CHECK(strstr(S(ev(3)->raw), "XRAY TraceId") != NULL);
	CHECK_STR(K(ev(4)), "init_report");
	CHECK_STR(ev(4)->body, "{\"init_duration_ms\":766.09,\"phase\":\"invoke\",\"status\":\"error\",\"error_type\":\"Runtime.ExitError\"}");
	CHECK_STR(K(ev(5)), "metric");
	CHECK_STR(ev(5)->body, "{\"_aws\":{\"Timestamp\":1702384510307},\"service\":\"syncBalanceSQS\",\"subBalanceDiscrapancy\":1}");
	CHECK(ev(5)->level.ptr == NULL && ev(5)->request_id.ptr == NULL);
	CHECK_STR(K(ev(6)), "platform_text");
	CHECK_STR(ev(6)->body, "{\"message\":\"Unknown application error occurred\\nRuntime.Unknown\"}");
	CHECK_STR(S(ev(6)->raw), "2023-12-12T12:00:01.691Z Unknown application error occurred\nRuntime.Unknown");
	CHECK_STR(K(ev(7)), "platform_text");
	/* logged_at of a platform line is its export timestamp */
	CHECK(ev(1)->has_logged_at && ev(1)->logged_at_us == 1705266000090000LL);
}

static void
test_app_kinds(void)
{
	parse(APP(RID, "INFO", "Processing message 1e398f10-12bd-4ace-baec-bd389be4bcfc")
		  APP(RID, "INFO", "Skipping the balance sync for create subscription, it will be synced from create subscription payment listener")
		  APP(RID, "INFO", "Skipping the process, balance is already synced from other listeners")
		  APP(RID, "INFO", "Skipping the process, Update Payment Balance Flag is set to false { transactionAction: 'DONATE_RAMADAN_MEAL' }")
		  APP(RID, "INFO", "SubscriptionBalanceUpdated event published")
		  APP(RID, "INFO", "Transaction Lock created!!!! Rr {\n  dirty: {},\n  original: { id: 'x' }\n}")
		  APP(RID, "INFO", "transaction {\"id\":\"01HCZP11HYGCPWPQ5E6EYCNDY0\",\"amount\":55,\"name\":\"Test \\u00e9\"}")
		  APP(RID, "INFO", "record.body {\"Message\":\"{\\\"a\\\":1}\"}")
		  APP(RID, "INFO", "record.body {not json")
		  APP(RID, "ERROR", "An error occured while syncing the balance TypeError: x\n    at Zi.exec (/src/a.ts:55:37)")
		  APP(RID, "ERROR", "An error occurred while syncing the balance")
		  APP("undefined", "ERROR", "Uncaught Exception \t{\"errorType\":\"Error\",\"errorMessage\":\"Cannot find module\",\"stack\":[\"a\",\"b\"]}")
		  APP(RID, "ERROR", "Invoke Error \t{\"errorType\":\"TypeError\"}")
		  APP(RID, "WARN", "something else entirely")
		  APP(RID, "DEBUG", "{ message: 'hello', data: { a: 1 } }")
		  APP(RID, "INFO", "transaction without json"));
	CHECK(R.n_events == 16);
	CHECK_STR(K(ev(0)), "processing_message");
	CHECK_STR(ev(0)->body, "{\"message_id\":\"1e398f10-12bd-4ace-baec-bd389be4bcfc\"}");
	CHECK_STR(S(ev(0)->message_id), "1e398f10-12bd-4ace-baec-bd389be4bcfc");
	CHECK_STR(S(ev(0)->level), "INFO");
	CHECK_STR(S(ev(0)->app_ts), "2024-01-14T21:00:01.500Z");
	CHECK_STR(S(ev(0)->export_ts), "2024-01-14T21:00:00.104Z");
	/* logged_at of an application line is its own timestamp */
	CHECK(ev(0)->logged_at_us == 1705266001500000LL);
	for (int i = 1; i <= 3; i++)
		CHECK_STR(K(ev(i)), "skip");
	CHECK_STR(ev(3)->body, "{\"message\":\"Skipping the process, Update Payment Balance Flag is set to false { transactionAction: 'DONATE_RAMADAN_MEAL' }\"}");
	CHECK_STR(K(ev(4)), "balance_updated");
	CHECK_STR(K(ev(5)), "transaction_lock");
	CHECK_STR(K(ev(6)), "transaction_json");
	CHECK_STR(ev(6)->body, "{\"message\":\"transaction\",\"data\":{\"id\":\"01HCZP11HYGCPWPQ5E6EYCNDY0\",\"amount\":55,\"name\":\"Test \xc3\xa9\"}}");
	CHECK_STR(K(ev(7)), "record_body");
	CHECK_STR(ev(7)->body, "{\"message\":\"record.body\",\"data\":{\"Message\":\"{\\\"a\\\":1}\"}}");
	CHECK_STR(K(ev(8)), "record_body");
	CHECK_STR(ev(8)->body, "{\"message\":\"record.body {not json\"}");
	CHECK_STR(K(ev(9)), "sync_error");
	CHECK_STR(ev(9)->body, "{\"message\":\"An error occured while syncing the balance TypeError: x\\n    at Zi.exec (/src/a.ts:55:37)\"}");
	CHECK_STR(K(ev(10)), "sync_error");
	CHECK_STR(K(ev(11)), "uncaught_exception");
	CHECK(ev(11)->request_id.ptr == NULL);
	CHECK(ev(11)->message_id.ptr == NULL);
	CHECK_STR(ev(11)->body, "{\"message\":\"Uncaught Exception\",\"data\":{\"errorType\":\"Error\",\"errorMessage\":\"Cannot find module\",\"stack\":[\"a\",\"b\"]}}");
	CHECK_STR(K(ev(12)), "invoke_error");
	CHECK_STR(K(ev(13)), "app_log");
	CHECK_STR(S(ev(13)->level), "WARN");
	CHECK_STR(ev(13)->body, "{\"message\":\"something else entirely\"}");
	CHECK_STR(K(ev(14)), "app_log");
	CHECK_STR(K(ev(15)), "app_log");
	/* message ids reach every later event of the request */
	for (int i = 1; i <= 15; i++)
		if (i != 11)
			CHECK_STR(S(ev(i)->message_id), "1e398f10-12bd-4ace-baec-bd389be4bcfc");
}

#define CURRENT_TXN(metadata, amount) \
	"Start syncing the balance {\n" \
	"  transaction: {\n" \
	"    id: '01H8VCD1GDJFMGT83PXT891WB0',\n" \
	"    type: 'DEBIT',\n" \
	"    source: 'MANUAL_DEDUCTION',\n" \
	"    action: 'DELIVERY_DEDUCTION',\n" \
	"    userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',\n" \
	"    paymentBalance: 268.0000000001,\n" \
	"    updatePaymentBalance: true,\n" \
	"    metadata: " metadata ",\n" \
	"    currency: 'SAR',\n" \
	"    amount: " amount ",\n" \
	"    vat: 0,\n" \
	"    oldBalance: 11608.930300000001,\n" \
	"    newBalance: -2660.5\n" \
	"  }\n" \
	"}"

#define CURRENT_BODY(metadata, amount) \
	"{\"id\":\"01H8VCD1GDJFMGT83PXT891WB0\",\"type\":\"DEBIT\",\"source\":\"MANUAL_DEDUCTION\"," \
	"\"action\":\"DELIVERY_DEDUCTION\",\"userId\":\"d23f0824-128b-4f33-8c5c-7fd0a6a3a450\"," \
	"\"paymentBalance\":268.0000000001,\"updatePaymentBalance\":true,\"metadata\":" metadata "," \
	"\"currency\":\"SAR\",\"amount\":" amount ",\"vat\":0,\"oldBalance\":11608.930300000001," \
	"\"newBalance\":-2660.5,\"legacy\":false}"

static void
test_transactions(void)
{
	parse(APP(RID, "INFO", CURRENT_TXN("'{\"walletId\":\"w#1\",\"version\":\"syncBalanceSQS\"}'", "5")));
	CHECK(R.n_events == 1);
	CHECK_STR(K(ev(0)), "transaction");
	CHECK_STR(ev(0)->body, CURRENT_BODY("{\"walletId\":\"w#1\",\"version\":\"syncBalanceSQS\"}", "5"));

	parse(APP(RID, "INFO", "Start syncing the balance {\n  transaction: {\n    id: '01H8JT97KB6CQ643DZVMXXQKFB',\n"
			  "    userId: '6513270e-269e-4d37-b2a7-4de452e6b438',\n    currency: 'BHD',\n    amount: 5,\n    vat: 0,\n"
			  "    oldBalance: 87.5,\n    newBalance: 82.5\n  }\n}"));
	CHECK_STR(K(ev(0)), "transaction");
	CHECK_STR(ev(0)->body, "{\"id\":\"01H8JT97KB6CQ643DZVMXXQKFB\",\"userId\":\"6513270e-269e-4d37-b2a7-4de452e6b438\","
			  "\"currency\":\"BHD\",\"amount\":5,\"vat\":0,\"oldBalance\":87.5,\"newBalance\":82.5,\"legacy\":true}");

	/* a current form missing an optional key: null, still current */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T1', type: 'CREDIT', userId: 'u', currency: 'BHD', "
			  "amount: 1.5, vat: 0, oldBalance: 0, newBalance: 1.5 } }"));
	CHECK_STR(ev(0)->body, "{\"id\":\"T1\",\"type\":\"CREDIT\",\"source\":null,\"action\":null,\"userId\":\"u\",\"paymentBalance\":null,"
			  "\"updatePaymentBalance\":null,\"metadata\":null,\"currency\":\"BHD\",\"amount\":1.5,\"vat\":0,\"oldBalance\":0,"
			  "\"newBalance\":1.5,\"legacy\":false}");
}

static void
test_metadata(void)
{
	/* nested JSON strings (shown as \\" in the JS string) stay JSON strings */
	parse(APP(RID, "INFO", CURRENT_TXN("'{\"planType\":\"custom\",\"nextPlan\":\"{\\\\\"id\\\\\": \\\\\"custom\\\\\", \\\\\"foodType\\\\\": [\\\\\"lunch\\\\\"]}\"}'", "5")));
	CHECK_STR(K(ev(0)), "transaction");
	CHECK_STR(ev(0)->body, CURRENT_BODY("{\"planType\":\"custom\",\"nextPlan\":\"{\\\"id\\\": \\\"custom\\\", \\\"foodType\\\": [\\\"lunch\\\"]}\"}", "5"));

	/* backtick string holding an apostrophe */
	parse(APP(RID, "INFO", CURRENT_TXN("`{\"note\":\"customer's request\"}`", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("{\"note\":\"customer's request\"}", "5"));

	parse(APP(RID, "INFO", CURRENT_TXN("undefined", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("null", "5"));

	/* a string that is not JSON stays a string, JS escapes decoded */
	parse(APP(RID, "INFO", CURRENT_TXN("'it\\'s \\\"x\\\"\\n\\t\\u00e9\\x41\\\\ \\u{1F600} \\ud83d\\ude00'", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("\"it's \\\"x\\\"\\n\\t\xc3\xa9" "A\\\\ \xf0\x9f\x98\x80 \xf0\x9f\x98\x80\"", "5"));

	/* Node's split long strings: 'a' + 'b' */
	parse(APP(RID, "INFO", CURRENT_TXN("'{\"a\":' +\n      '1}'", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("{\"a\":1}", "5"));

	/* control characters reach the JSON escaped */
	parse(APP(RID, "INFO", CURRENT_TXN("'\\x01\\x1f'", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("\"\\u0001\\u001f\"", "5"));

	/*
	 * C3: U+0000 and lone surrogates, which jsonb cannot hold, are never
	 * replaced silently.  In the string itself (after the JavaScript
	 * escapes): bad_field.  As a \u escape of the JSON inside the string:
	 * that JSON is not parsed, metadata stays its text with the escape.
	 */
	{
		static const char *const unstorable[] = {
			"'\\0'", "'a\\x00b'", "'\\u0000'", "'\\u{0}'", "'\\ud800'", "'x\\udc00'",
			"{ a: 'x\\0' }", "{ 'k\\0': 1 }", "[1, ['\\ud800']]",
		};

		for (size_t i = 0; i < sizeof(unstorable) / sizeof(unstorable[0]); i++)
		{
			char		text[2048];

			snprintf(text, sizeof(text), APP(RID, "INFO", CURRENT_TXN("%s", "5")), unstorable[i]);
			parse(text);
			CHECK_STR(ev(0)->reason, "bad_field");
			CHECK(strstr(ev(0)->body, "key 'metadata' at line 10, column 15 holds U+0000 or a lone surrogate") != NULL);
		}
	}
	parse(APP(RID, "INFO", CURRENT_TXN("'{\"a\":\"\\\\u0000\\\\udc00\"}'", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("\"{\\\"a\\\":\\\"\\\\u0000\\\\udc00\\\"}\"", "5"));
	parse(APP(RID, "INFO", CURRENT_TXN("'{\"note\":\"a\\\\u0000b\"}'", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("\"{\\\"note\\\":\\\"a\\\\u0000b\\\"}\"", "5"));

	/* an object literal as metadata */
	parse(APP(RID, "INFO", CURRENT_TXN("{ a: 'x', b: [1, undefined] }", "5")));
	CHECK_STR(ev(0)->body, CURRENT_BODY("{\"a\":\"x\",\"b\":[1,null]}", "5"));

	/* JSON inside the string: valid -> embedded, anything else -> the string itself */
	{
		static const struct
		{
			const char *src;	/* metadata as the log shows it */
			const char *json;	/* its value in the body; NULL: event malformed */
		}			cases[] = {
			{"'{\"a\":true,\"b\":false,\"c\":null,\"d\":\"\\\\b\\\\f\\\\n\\\\r\\\\t\\\\/\"}'",
			"{\"a\":true,\"b\":false,\"c\":null,\"d\":\"\\b\\f\\n\\r\\t/\"}"},
			{"'{\"e\":\"\\\\ud83d\\\\ude00\\\\u0041\"}'", "{\"e\":\"\xf0\x9f\x98\x80" "A\"}"},
			{"'{\"x\":\"\\\\uD800\"}'", "\"{\\\"x\\\":\\\"\\\\uD800\\\"}\""},
			{"'{\"x\":\"\\\\uD800\\\\u0041\"}'", "\"{\\\"x\\\":\\\"\\\\uD800\\\\u0041\\\"}\""},
			{"'{\"a\":1,\"b\":{\"c\":2,\"c\":3}}'", "\"{\\\"a\\\":1,\\\"b\\\":{\\\"c\\\":2,\\\"c\\\":3}}\""},
			{"'{\"a\":{\"c\":2},\"b\":{\"c\":3}}'", "{\"a\":{\"c\":2},\"b\":{\"c\":3}}"},
			{"'{\"\\\\u0061\":1,\"a\":2}'", "\"{\\\"\\\\u0061\\\":1,\\\"a\\\":2}\""},
			{"'{\"a\":tru}'", "\"{\\\"a\\\":tru}\""},
			{"'{\"a\" 1}'", "\"{\\\"a\\\" 1}\""},
			{"'[1,2'", "\"[1,2\""},
			{"'\"x\" y'", "\"\\\"x\\\" y\""},
			{"'{\"a\":\"\\\\q\"}'", "\"{\\\"a\\\":\\\"\\\\q\\\"}\""},
			{"'{\"a\":\"tab\\there\"}'", "\"{\\\"a\\\":\\\"tab\\there\\\"}\""},
			{"'01'", "\"01\""},
			{"'{\"big\":1e1001}'", "\"{\\\"big\\\":1e1001}\""},
			{"'{\"n\":1e5,\"m\":-0.5,\"z\":0,\"w\":[]}'", "{\"n\":1e5,\"m\":-0.5,\"z\":0,\"w\":[]}"},
			{"'  {\"a\":1}  '", "{\"a\":1}"},
			{"'true'", "true"},
			{"'null'", "null"},
			{"''", "\"\""},
			{"'\\r\\b\\f\\v'", "\"\\r\\u0008\\u000c\\u000b\""},
			{"'a\\\nb'", "\"ab\""},
			{"`multi\nline`", "\"multi\\nline\""},
			{"\"it's\"", "\"it's\""},
			{"{ 'quoted-key': 1, \"dq\": 2, 3: 'x' }", "{\"quoted-key\":1,\"dq\":2,\"3\":\"x\"}"},
			{"[1, 'a', undefined, null, true, Foo, [Object]]", "[1,\"a\",null,null,true,\"Foo\",[\"Object\"]]"},
			{"'\\xZZ'", NULL},
			{"'\\u{110000}'", NULL},
			{"'\\u12'", NULL},
			{"'line\nbreak'", NULL},
			{"Foo", NULL},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		{
			char		text[2048];

			snprintf(text, sizeof(text), APP(RID, "INFO", CURRENT_TXN("%s", "5")), cases[i].src);
			parse(text);
			if (cases[i].json)
			{
				char		want[2048];

				snprintf(want, sizeof(want), CURRENT_BODY("%s", "5"), cases[i].json);
				CHECK_STR(ev(0)->body, want);
			}
			else
			{
				CHECK_STR(K(ev(0)), "malformed");
				CHECK(ev(0)->reason && (strcmp(ev(0)->reason, "malformed_event") == 0 || strcmp(ev(0)->reason, "bad_field") == 0));
			}
		}
	}

	/* metadata nested deeper than the limit stays a string */
	{
		char		text[4096];
		char		meta[1024];
		size_t		k = 0;

		meta[k++] = '\'';
		for (int i = 0; i < 100; i++)
			meta[k++] = '[';
		for (int i = 0; i < 100; i++)
			meta[k++] = ']';
		meta[k++] = '\'';
		meta[k] = 0;
		snprintf(text, sizeof(text), "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t%s\tINFO\tStart syncing the balance "
				 "{ transaction: { id: 'T', type: 'DEBIT', userId: 'u', metadata: %s, currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }",
				 RID, meta);
		parse(text);
		CHECK_STR(K(ev(0)), "transaction");
		CHECK(strstr(ev(0)->body, "\"metadata\":\"[[[[") != NULL);
	}
}

static void
test_numbers(void)
{
	static const struct
	{
		const char *src;
		const char *json;		/* NULL: malformed */
		const char *reason;
	}			cases[] = {
		{"268.0000000001", "268.0000000001", NULL},
		{"11608.930300000001", "11608.930300000001", NULL},
		{"-2660.5", "-2660.5", NULL},
		{"0", "0", NULL},
		{"-0", "-0", NULL},
		{"1e14", "1e14", NULL},
		{"1e21", NULL, "out_of_range"},	/* well spelled, but money of 10^15 or more */
		{"5e-7", "5e-7", NULL},
		{"+5", "5", NULL},
		{".5", "0.5", NULL},
		{"-.25", "-0.25", NULL},
		{"NaN", NULL, NULL},
		{"Infinity", NULL, NULL},
		{"-Infinity", NULL, NULL},
		{"0x10", NULL, NULL},
		{"007", NULL, NULL},
		{"5.", NULL, NULL},
		{"1e5000", NULL, "out_of_range"},
		{"-1.5e-1001", NULL, "out_of_range"},
		{"1e-1000", "1e-1000", NULL},
		{"1e1000", NULL, "out_of_range"},
		{"1_000", NULL, NULL},
		{"5n", NULL, NULL},
		{"'5'", NULL, NULL},
		{"undefined", NULL, NULL},
		{"null", NULL, NULL},
		{"true", NULL, NULL},
		{"[5]", NULL, NULL},
		{"--5", NULL, "malformed_event"},
		{"1e", NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		text[2048];

		snprintf(text, sizeof(text), APP(RID, "INFO", CURRENT_TXN("undefined", "%s")), cases[i].src);
		parse(text);
		if (cases[i].json)
		{
			char		want[2048];

			snprintf(want, sizeof(want), CURRENT_BODY("null", "%s"), cases[i].json);
			CHECK_STR(ev(0)->body, want);
		}
		else
		{
			CHECK_STR(K(ev(0)), "malformed");
			CHECK_STR(ev(0)->reason, cases[i].reason ? cases[i].reason : "bad_field");
			CHECK(ev(0)->intended_kind == LP_TRANSACTION);
			CHECK(cases[i].reason || strstr(ev(0)->body, "key 'amount' at line 12, column 13 is not a finite number") != NULL);
			if (cases[i].reason && strcmp(cases[i].reason, "out_of_range") == 0)
				CHECK(strstr(ev(0)->body, "key 'amount' at line 12, column 13 is a number with an exponent beyond the limit of +-1000") != NULL ||
					  strstr(ev(0)->body, "key 'amount' at line 12, column 13 is money of 10^15 or more") != NULL);
			CHECK(strstr(ev(0)->body, "\"intended_kind\":\"transaction\"") != NULL);
		}
	}

	/*
	 * B6: a well-formed number longer than LP_MAX_NUMBER_LEN is out_of_range
	 * (as money of 10^15 or more is), not "not a finite number".
	 */
	{
		static const char *const forms[] = {"0.%s", "-%s", "1.%se5"};

		for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
		{
			size_t		ndigits = 5000;
			char	   *digits = malloc(ndigits + 1);
			char	   *number = malloc(ndigits + 16);
			char	   *text = malloc(ndigits + 2048);

			for (size_t i = 0; i < ndigits; i++)
				digits[i] = (char) ('1' + i % 9);
			digits[ndigits] = '\0';
			snprintf(number, ndigits + 16, forms[f], digits);
			snprintf(text, ndigits + 2048, APP(RID, "INFO", CURRENT_TXN("undefined", "%s")), number);
			parse(text);
			CHECK_STR(ev(0)->reason, "out_of_range");
			CHECK(ev(0)->intended_kind == LP_TRANSACTION);
			{
				char		want[160];

				snprintf(want, sizeof(want), "key 'amount' at line 12, column 13 is a number of %zu characters, more than the limit of %d",
						 strlen(number), LP_MAX_NUMBER_LEN);
				CHECK(strstr(ev(0)->body, want) != NULL);
			}
			free(digits);
			free(number);
			free(text);
		}
		/* the longest number accepted */
		{
			char		number[LP_MAX_NUMBER_LEN + 1];
			char		text[4096];

			memset(number, '7', LP_MAX_NUMBER_LEN);
			number[0] = '0', number[1] = '.';	/* below 10^15: a valid amount */
			number[LP_MAX_NUMBER_LEN] = '\0';
			snprintf(text, sizeof(text), APP(RID, "INFO", CURRENT_TXN("undefined", "%s")), number);
			parse(text);
			CHECK_STR(K(ev(0)), "transaction");
		}
	}

	/* a missing required key */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T', userId: 'u', currency: 'BHD', amount: 1, oldBalance: 1, newBalance: 0 } }"));
	CHECK_STR(ev(0)->reason, "missing_field");
	CHECK_STR(ev(0)->body, "{\"reason\":\"missing_field\",\"detail\":\"transaction: required key 'vat' is missing\",\"intended_kind\":\"transaction\","
			  "\"field\":\"vat\",\"txn_id\":\"T\"}");
	/* an empty id */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: '', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"));
	CHECK_STR(ev(0)->reason, "bad_field");
	CHECK(strstr(ev(0)->body, "key 'id'") != NULL);
	/* no transaction object at all */
	parse(APP(RID, "INFO", "Start syncing the balance { other: 1 }"));
	CHECK_STR(ev(0)->reason, "missing_field");
	CHECK(strstr(ev(0)->body, "'transaction'") != NULL);
	/* a bad optional field */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T', type: 5, userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"));
	CHECK_STR(ev(0)->reason, "bad_field");
	CHECK(strstr(ev(0)->body, "key 'type'") != NULL);
}

static void
test_balance_errors_and_links(void)
{
#define TXN(id) "Start syncing the balance { transaction: { id: '" id "', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"
#define BERR "Subscription balance and payment balance are not in sync {\n  userId: 'u',\n  subscriptionBalance: 82.5,\n  paymentBalance: -499.5\n}"
	parse(APP(RID, "INFO", "before any message")
		  APP(RID, "INFO", "Processing message m-1")
		  APP(RID2, "INFO", "Processing message m-9")
		  APP(RID, "INFO", TXN("T1"))
		  APP(RID2, "ERROR", BERR)		/* request 2, no transaction */
		  APP(RID, "ERROR", BERR)		/* -> T1 */
		  APP(RID, "INFO", "Processing message m-2")
		  APP(RID, "ERROR", BERR)		/* -> T2, logged before it */
		  APP(RID, "INFO", TXN("T2"))
		  APP(RID, "INFO", "Processing message m-3")
		  APP(RID, "ERROR", BERR)		/* message 3 has no transaction */
		  "2024-01-14T21:00:00.216Z END RequestId: " RID "\n\n"
		  "2024-01-14T21:00:00.300Z {\"_aws\":{}}\n");
	CHECK(R.n_events == 13);
	CHECK(ev(0)->message_id.ptr == NULL);
	CHECK_STR(S(ev(1)->message_id), "m-1");
	CHECK_STR(S(ev(2)->message_id), "m-9");
	CHECK_STR(S(ev(3)->message_id), "m-1");
	CHECK_STR(K(ev(4)), "balance_error");
	CHECK_STR(S(ev(4)->message_id), "m-9");
	CHECK_STR(ev(4)->body, "{\"userId\":\"u\",\"subscriptionBalance\":82.5,\"paymentBalance\":-499.5,\"txn_id\":null}");
	CHECK_STR(ev(5)->body, "{\"userId\":\"u\",\"subscriptionBalance\":82.5,\"paymentBalance\":-499.5,\"txn_id\":\"T1\"}");
	CHECK_STR(S(ev(7)->message_id), "m-2");
	CHECK_STR(ev(7)->body, "{\"userId\":\"u\",\"subscriptionBalance\":82.5,\"paymentBalance\":-499.5,\"txn_id\":\"T2\"}");
	CHECK_STR(ev(10)->body, "{\"userId\":\"u\",\"subscriptionBalance\":82.5,\"paymentBalance\":-499.5,\"txn_id\":null}");
	CHECK_STR(K(ev(11)), "end");
	CHECK_STR(S(ev(11)->message_id), "m-3");
	CHECK(ev(12)->message_id.ptr == NULL);

	/* a balance error with a missing or bad field */
	parse(APP(RID, "ERROR", "Subscription balance and payment balance are not in sync { userId: 'u', subscriptionBalance: 1 }"));
	CHECK_STR(ev(0)->reason, "missing_field");
	CHECK(ev(0)->intended_kind == LP_BALANCE_ERROR);
	CHECK(strstr(ev(0)->body, "'paymentBalance'") != NULL);
	parse(APP(RID, "ERROR", "Subscription balance and payment balance are not in sync { userId: 'u', subscriptionBalance: 1, paymentBalance: 'x' }"));
	CHECK_STR(ev(0)->reason, "bad_field");
	/* a syntax error inside the object */
	parse(APP(RID, "ERROR", "Subscription balance and payment balance are not in sync {\n  userId: 'u'\n  subscriptionBalance: 1 }"));
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK_STR(ev(0)->body, "{\"reason\":\"malformed_event\",\"detail\":\"balance_error: expected ',' or '}' at line 3, column 3\",\"intended_kind\":\"balance_error\"}");
	CHECK_STR(S(ev(0)->request_id), RID);
	CHECK_STR(S(ev(0)->level), "ERROR");
#undef TXN
#undef BERR
}

static void
test_rejections(void)
{
	parse(APP(RID, "INFO", "{\n  message: 'Subscriber will have a negative balance due to this action, the process will terminate.',\n"
			  "  data: {\n    userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',\n    currentBalance: -40,\n"
			  "    transactionId: '01HC1TRTDRHN3ZHQ8D5HFRSWVK'\n  }\n}"));
	CHECK_STR(K(ev(0)), "negative_balance_rejection");
	CHECK_STR(ev(0)->body, "{\"userId\":\"8d116ece-1738-47d9-bd9c-172411e20b8f\",\"currentBalance\":-40,"
			  "\"transactionId\":\"01HC1TRTDRHN3ZHQ8D5HFRSWVK\",\"message\":\"Subscriber will have a negative balance due to this action, the process will terminate.\"}");

	/* other wording, same meaning */
	parse(APP(RID, "INFO", "{ message: 'User would have a negative balance', data: { userId: 'u', currentBalance: 0.5, transactionId: 'T' } }"));
	CHECK_STR(K(ev(0)), "negative_balance_rejection");
	/* an object literal about something else */
	parse(APP(RID, "INFO", "{ message: 'all good', data: { userId: 'u' } }"));
	CHECK_STR(K(ev(0)), "app_log");
	/* missing transactionId */
	parse(APP(RID, "INFO", "{ message: 'negative balance', data: { userId: 'u', currentBalance: -1 } }"));
	CHECK_STR(ev(0)->reason, "missing_field");
	CHECK(ev(0)->intended_kind == LP_NEGATIVE_BALANCE_REJECTION);
	/* cut off */
	parse(APP(RID, "INFO", "{\n  message: 'Subscriber will have a negative balance due to this action.',\n  data: {\n    userId: 'u',"));
	CHECK_STR(ev(0)->reason, "truncated_event");
	CHECK(ev(0)->intended_kind == LP_NEGATIVE_BALANCE_REJECTION);
}

static void
test_truncated_and_malformed(void)
{
	/* a transaction cut off at the end of the text (a truncated file) */
	parse("2024-01-14T21:00:00.090Z START RequestId: " RID " Version: $LATEST\n\n"
		  "2024-01-14T21:00:00.176Z 2024-01-14T21:00:00.176Z\t" RID "\tINFO\tStart syncing the balance {\n  transaction: {\n"
		  "    id: '01H8VCD1GDJFMGT83PXT891WB0',\n    type: 'DEB");
	CHECK(R.n_events == 2);
	CHECK_STR(K(ev(1)), "malformed");
	CHECK_STR(ev(1)->reason, "truncated_event");
	CHECK(ev(1)->intended_kind == LP_TRANSACTION);
	CHECK_STR(ev(1)->body, "{\"reason\":\"truncated_event\",\"detail\":\"transaction: unterminated string at line 4, column 15 (the event ends inside the object)\",\"intended_kind\":\"transaction\"}");
	CHECK(ev(1)->has_logged_at);

	/* truncated between members, and right after the opening phrase */
	parse(APP(RID, "INFO", "Start syncing the balance {\n  transaction: {\n    id: 'x',"));
	CHECK_STR(ev(0)->reason, "truncated_event");
	parse(APP(RID, "INFO", "Start syncing the balance"));
	CHECK_STR(ev(0)->reason, "truncated_event");
	/* text after the object */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } } extra"));
	CHECK_STR(ev(0)->reason, "malformed_event");

	/* a truncated metric line */
	parse("2023-12-12T12:00:00.272Z {\"_aws\":{\"Timestamp\":17023845");
	CHECK_STR(ev(0)->reason, "truncated_event");
	CHECK(ev(0)->intended_kind == LP_METRIC);
	parse("2023-12-12T12:00:00.272Z {\"_aws\":{\"Timestamp\":x}}");
	CHECK_STR(ev(0)->reason, "malformed_event");

	/* nesting deeper than the limit */
	{
		char		text[8192];
		size_t		k;

		k = (size_t) snprintf(text, sizeof(text), "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t%s\tINFO\tStart syncing the balance ", RID);
		for (int i = 0; i < 2000; i++)
			text[k++] = i % 2 ? '[' : '{', text[k++] = i % 2 ? ' ' : 'a', text[k++] = i % 2 ? ' ' : ':';
		text[k] = 0;
		parse(text);
		CHECK_STR(ev(0)->reason, "malformed_event");
		CHECK(strstr(ev(0)->body, "nesting too deep") != NULL);
	}

	/* an application line without its tabs */
	parse("2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t" RID " INFO hello\n");
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK(ev(0)->intended_kind == LP_KIND_NONE);
	CHECK(strstr(ev(0)->body, "\"intended_kind\":null") != NULL);
}

static void
test_timestamps(void)
{
	int64_t		us = -1;

	CHECK(lp_parse_timestamp("1970-01-01T00:00:00.000Z", 24, &us) == 1 && us == 0);
	CHECK(lp_parse_timestamp("2024-01-14T21:00:00.104Z", 24, &us) == 1 && us == 1705266000104000LL);
	CHECK(lp_parse_timestamp("2024-02-29T00:00:00.000Z", 24, &us) == 1);
	CHECK(lp_parse_timestamp("2000-02-29T00:00:00.000Z", 24, &us) == 1);
	CHECK(lp_parse_timestamp("1900-02-29T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-02-29T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-13-01T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-00-01T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-04-31T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-01-01T24:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-01-01T23:60:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-01-01T23:00:60.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("0000-01-01T00:00:00.000Z", 24, &us) == 0);
	CHECK(lp_parse_timestamp("2023-01-01 00:00:00.000Z", 24, &us) == -1);
	CHECK(lp_parse_timestamp("2023-01-01T00:00:00.000", 23, &us) == -1);
	CHECK(lp_parse_timestamp("2023-01-01T00:00:00.00Z ", 24, &us) == -1);

	/* an impossible export timestamp still starts an event, a malformed one */
	parse("2024-01-14T21:00:00.090Z START RequestId: a Version: 1\n\n2024-13-14T21:00:00.090Z END RequestId: a\n");
	CHECK(R.n_events == 2);
	CHECK_STR(ev(1)->reason, "bad_timestamp");
	CHECK(!ev(1)->has_logged_at);
	/* an impossible application timestamp: logged_at falls back to the export one */
	parse("2024-01-14T21:00:00.090Z 2024-01-14T25:00:00.090Z\t" RID "\tINFO\thello\n");
	CHECK_STR(ev(0)->reason, "bad_timestamp");
	CHECK(ev(0)->has_logged_at && ev(0)->logged_at_us == 1705266000090000LL);
	CHECK_STR(S(ev(0)->request_id), RID);
}

static void
test_splitting(void)
{
	/* text before the first timestamp, and text that is no log at all */
	parse("garbage line\nmore\n\n2024-01-14T21:00:00.216Z END RequestId: " RID "\n");
	CHECK(R.n_events == 2);
	CHECK_STR(K(ev(0)), "malformed");
	CHECK_STR(ev(0)->reason, "no_timestamp");
	CHECK(!ev(0)->has_logged_at);
	CHECK_STR(S(ev(0)->raw), "garbage line\nmore");
	CHECK_STR(K(ev(1)), "end");
	parse("PK\x03\x04 binary \x01\x02\xff\xfe");
	CHECK(R.n_events == 1);
	CHECK_STR(ev(0)->reason, "no_timestamp");
	/* a timestamp glued to its text is no event start */
	parse("2024-01-14T21:00:00.216ZEND\n");
	CHECK(R.n_events == 1);
	CHECK_STR(ev(0)->reason, "no_timestamp");

	/* empty input, blank lines only */
	parse("");
	CHECK(R.n_events == 0);
	parse("\n\n  \n\r\n");
	CHECK(R.n_events == 0);
	lp_free(&R);
	CHECK(lp_parse(NULL, 0, NULL, &R) == LP_OK && R.n_events == 0);

	/* blank lines inside a message belong to it; a timestamp after a blank line starts the next event */
	parse(APP(RID, "ERROR", "An error occured while syncing\n\n    at a (b.js:1:1)\n\n\n    at c (d.js:2:2)")
		  "2024-01-14T21:00:00.216Z END RequestId: " RID "\n");
	CHECK(R.n_events == 2);
	CHECK_STR(K(ev(0)), "sync_error");
	CHECK_STR(ev(0)->body, "{\"message\":\"An error occured while syncing\\n\\n    at a (b.js:1:1)\\n\\n\\n    at c (d.js:2:2)\"}");
	CHECK(ev(0)->raw.len == strlen("2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t" RID "\tERROR\tAn error occured while syncing\n\n    at a (b.js:1:1)\n\n\n    at c (d.js:2:2)"));
	/* an event without the blank separator line still ends where the next timestamp starts */
	parse("2024-01-14T21:00:00.090Z START RequestId: a Version: 1\n2024-01-14T21:00:00.216Z END RequestId: a");
	CHECK(R.n_events == 2);
	CHECK_STR(K(ev(1)), "end");
	CHECK_STR(S(ev(1)->request_id), "a");

	/* hostile bytes inside messages still give valid JSON */
	{
		static const char text[] = "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\tr\tINFO\tx\x01y\"\\z\xff\xc3(\xed\xa0\x80\0end\n";

		parse_len(text, sizeof(text) - 1);
		CHECK(R.n_events == 1);
		CHECK_STR(ev(0)->body, "{\"message\":\"x\\u0001y\\\"\\\\z\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffdend\"}");
	}
}

static int	progress_calls;

static void
count_progress(void *arg)
{
	(void) arg;
	progress_calls++;
}

static void
test_progress(void)
{
	size_t		n = 0,
				cap = 600 * 64;
	char	   *text = malloc(cap);
	lp_options	opts = {count_progress, NULL};

	for (int i = 0; i < 600; i++)
		n += (size_t) snprintf(text + n, cap - n, "2024-01-14T21:00:00.216Z END RequestId: r%d\n\n", i);
	lp_free(&R);
	CHECK(lp_parse(text, n, &opts, &R) == LP_OK);
	CHECK(R.n_events == 600);
	CHECK(progress_calls == 2);
	lp_free(&R);
	free(text);
}

/*
 * Escaping and the token reader scan strings eight bytes at a time: a byte
 * that needs care at every offset of a long run, for each such byte.
 */
static void
test_special_byte_offsets(void)
{
	static const struct
	{
		const char *in;
		const char *out;
	}			specials[] = {
		{"\"", "\\\""}, {"\\", "\\\\"}, {"\t", "\\t"}, {"\x01", "\\u0001"}, {"\x1f", "\\u001f"},
		{"\xc3\xa9", "\xc3\xa9"}, {"\xff", "\\ufffd"}, {"\x7f", "\x7f"}, {" ", " "},
	};

	for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
		for (int at = 0; at <= 40; at++)
		{
			char		text[256],
						want[256];

			snprintf(text, sizeof(text), APP(RID, "INFO", "%.*s%s%.*sz"), at,
					 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", specials[k].in, 40 - at,
					 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
			snprintf(want, sizeof(want), "{\"message\":\"%.*s%s%.*sz\"}", at,
					 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", specials[k].out, 40 - at,
					 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
			parse(text);
			CHECK(R.n_events == 1);
			CHECK_STR(ev(0)->body, want);
		}
}

/* the token types of json, as letters: {}[] k(ey) s(tring) n(umber) t f z(null) E(rror) $(end) */
static const char *
token_letters(const char *json)
{
	static char letters[128];
	lp_json_reader r;
	lp_json_token tok;
	size_t		n = 0;

	lp_json_reader_init(&r, json, strlen(json));
	while (n + 1 < sizeof(letters))
	{
		lp_json_type t = lp_json_next(&r, &tok);

		letters[n++] = "${}[]ksntfzE"[t];
		if (t == LP_JSON_END || t == LP_JSON_ERROR)
			break;
	}
	letters[n] = '\0';
	return letters;
}

static void
test_json_reader(void)
{
	lp_json_reader r;
	lp_json_token tok;
	char		d[64];
	size_t		dn;

	CHECK_STR(token_letters("{}"), "{}$");
	CHECK_STR(token_letters("[]"), "[]$");
	CHECK_STR(token_letters("{\"a\":1,\"b\":[true,false,null,\"x\",{}],\"c\":{\"d\":-0.5e+3}}"), "{knk[tfzs{}]k{kn}}$");
	CHECK_STR(token_letters("\"top\""), "s$");
	CHECK_STR(token_letters("12"), "n$");
	/* not compact strict JSON: whitespace, trailing text or commas, bad numbers, escapes, words */
	CHECK_STR(token_letters("{ }"), "{E");
	CHECK_STR(token_letters("{}x"), "{}E");
	CHECK_STR(token_letters("{},"), "{}E");
	CHECK_STR(token_letters("[1,]"), "[nE");
	CHECK_STR(token_letters("{\"a\":1,}"), "{knE");
	CHECK_STR(token_letters("{\"a\"1}"), "{E");
	CHECK_STR(token_letters("{\"a\":1]"), "{knE");
	CHECK_STR(token_letters("[1}"), "[nE");
	CHECK_STR(token_letters("{1:2}"), "{E");
	CHECK_STR(token_letters("[01]"), "[E");
	CHECK_STR(token_letters("[.5]"), "[E");
	CHECK_STR(token_letters("[+5]"), "[E");
	CHECK_STR(token_letters("[5.]"), "[E");
	CHECK_STR(token_letters("[1e1001]"), "[E");
	CHECK_STR(token_letters("[tru]"), "[E");
	CHECK_STR(token_letters("[nul"), "[E");
	CHECK_STR(token_letters("[\"\\u0000\"]"), "[E");
	CHECK_STR(token_letters("[\"\\ud83d\\ude00\"]"), "[E");
	CHECK_STR(token_letters("[\"\\x41\"]"), "[E");
	CHECK_STR(token_letters("[\"\\u12\"]"), "[E");
	CHECK_STR(token_letters("[\"a\nb\"]"), "[E");
	CHECK_STR(token_letters("[\"abc"), "[E");
	CHECK_STR(token_letters("[1"), "[nE");
	CHECK_STR(token_letters(""), "E");
	CHECK_STR(token_letters("}"), "E");
	{
		/* nesting up to the reader's depth, not beyond */
		char		deep[2 * LP_JSON_READER_DEPTH + 8];
		int			k;

		for (int depth = LP_JSON_READER_DEPTH; depth <= LP_JSON_READER_DEPTH + 1; depth++)
		{
			lp_json_type t;

			for (k = 0; k < depth; k++)
				deep[k] = '[', deep[depth + k] = ']';
			lp_json_reader_init(&r, deep, 2 * (size_t) depth);
			while ((t = lp_json_next(&r, &tok)) != LP_JSON_END && t != LP_JSON_ERROR)
				;
			CHECK(t == (depth == LP_JSON_READER_DEPTH ? LP_JSON_END : LP_JSON_ERROR));
		}
	}
	/* an error stays */
	lp_json_reader_init(&r, "[x]", 3);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_BEGIN_ARRAY);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_ERROR);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_ERROR);

	/* slices: keys and strings between their quotes, numbers as written */
	{
		static const char obj[] = "{\"k\\\"\":\"v\",\"n\":-12.50E-3}";

		lp_json_reader_init(&r, obj, strlen(obj));
	}
	CHECK(lp_json_next(&r, &tok) == LP_JSON_BEGIN_OBJECT);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_KEY && tok.len == 3 && memcmp(tok.ptr, "k\\\"", 3) == 0 && tok.escaped);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_STRING && tok.len == 1 && tok.ptr[0] == 'v' && !tok.escaped);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_KEY && tok.len == 1 && tok.ptr[0] == 'n');
	CHECK(lp_json_next(&r, &tok) == LP_JSON_NUMBER && tok.len == 9 && memcmp(tok.ptr, "-12.50E-3", 9) == 0);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_END_OBJECT);
	CHECK(lp_json_next(&r, &tok) == LP_JSON_END);

	/* unescaping */
#define UNESCAPE(src) (dn = lp_json_unescape((src), strlen(src), d), d[dn] = '\0', d)
	CHECK_STR(UNESCAPE("plain"), "plain");
	CHECK_STR(UNESCAPE("a\\\"b\\\\c\\/d"), "a\"b\\c/d");
	CHECK_STR(UNESCAPE("\\b\\f\\n\\r\\t"), "\b\f\n\r\t");
	CHECK_STR(UNESCAPE("\\u0001\\u001F\\u0041"), "\x01\x1f" "A");
	CHECK_STR(UNESCAPE("\\u00e9\\u20AC\\ufffd"), "\xc3\xa9\xe2\x82\xac\xef\xbf\xbd");
	CHECK_STR(UNESCAPE("x\\u00e9y"), "x\xc3\xa9y");
	CHECK(lp_json_unescape("\\u20ac", 6, d) == 3);
	/* never longer than the input, even on escapes the reader refuses */
	CHECK(lp_json_unescape("\\u12", 4, d) <= 4);
	CHECK(lp_json_unescape("\\", 1, d) <= 1);
	CHECK(lp_json_unescape("\\u", 2, d) <= 2);
#undef UNESCAPE
}

/* D2: a log line run into another is found wherever the second one starts */
static void
test_run_together(void)
{
	static const struct
	{
		const char *text;
		const char *intended;	/* kind named in the malformed body */
		const char *found;		/* what the detail quotes */
	}			cases[] = {
		/* the line: two application lines run together */
		{"2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t" RID "\tINFO\tProcessing message 7b84\tINFO\tStart syncing the balance { transaction: { id: 'T1', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }\n",
		"transaction", "\\tINFO\\t"},
		/* the second line whole, timestamps included, after a START line */
		{"2024-01-14T21:00:00.090Z START RequestId: " RID " Version: $LATEST2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t" RID "\tINFO\tStart syncing the balance { transaction: { id: 'T1' } }\n",
		"transaction", "2024-01-14T21:00:01.500Z\\t"},
		/* a REPORT line with a balance error after it */
		{"2024-01-14T21:00:00.225Z REPORT RequestId: " RID "\tDuration: 117.45 ms\tBilled Duration: 100 ms\tERROR\tSubscription balance and payment balance are not in sync { userId: 'u', subscriptionBalance: 1, paymentBalance: 2 }\n",
		"balance_error", "\\tERROR\\t"},
		/* an app_log swallowing a transaction whose prefix lost its tabs */
		{APP(RID, "INFO", "hello worldStart syncing the balance { transaction: { id: 'T1' } }"), "transaction", "Start syncing the balance"},
		/* a continuation line that is another application line without its export timestamp */
		{APP(RID, "INFO", "Skipping the process\n2024-01-14T21:00:02.000Z\t" RID "\tINFO\t{ message: 'negative balance', data: {} }"),
		"negative_balance_rejection", "2024-01-14T21:00:02.000Z\\t"},
		/* platform lines run together: nothing of data, the event keeps its own kind as intended */
		{"2024-01-14T21:00:00.216Z END RequestId: " RID " 2024-01-14T21:00:00.225Z REPORT RequestId: " RID "\tDuration: 1 ms\n",
		"end", "REPORT RequestId: "},
		{"2024-01-14T21:00:00.216Z Unknown application error occurred START RequestId: x\n", "platform_text", "START RequestId: "},
		{APP(RID, "INFO", "SubscriptionBalanceUpdated event published\tINFO\tProcessing message m2"), "balance_updated", "\\tINFO\\t"},
		{APP(RID, "INFO", "Processing message m1 Processing message m2"), "processing_message", "Processing message "},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		want[128];

		parse(cases[i].text);
		CHECK(R.n_events == 1);
		CHECK_STR(ev(0)->reason, "malformed_event");
		CHECK_STR(lp_kind_name(ev(0)->intended_kind), cases[i].intended);
		snprintf(want, sizeof(want), "(\\\"%s\\\"): lines run together", cases[i].found);
		if (strstr(ev(0)->body, want) == NULL)
		{
			unit_failed++;
			fprintf(stderr, "run-together case %zu: body %s lacks %s\n", i, ev(0)->body, want);
		}
		CHECK(ev(0)->has_logged_at);
	}

	/* the rest of the text is unaffected, and the accounting is one event per event */
	parse(APP(RID, "INFO", "Processing message 7b84\tINFO\tStart syncing the balance { transaction: { id: 'T1' } }")
		  APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T2', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"));
	CHECK(R.n_events == 2);
	CHECK_STR(K(ev(0)), "malformed");
	CHECK_STR(K(ev(1)), "transaction");

	/* not run together: tabs, words and timestamps that start no line */
	parse("2024-01-14T21:00:00.225Z REPORT RequestId: " RID "\tDuration: 117.45 ms\tBilled Duration: 100 ms\tMemory Size: 1024 MB\tMax Memory Used: 104 MB\t\n"
		  "XRAY TraceId: 1-6579cbfd-8fcd7f4073c1cd2c81f98b52\tSegmentId: e998d0eee4ddf9b9\tSampled: true\t\n\n"
		  APP(RID, "INFO", "Skipping the balance sync at 2024-01-14T21:00:01.500Z for INFO reasons, START later")
		  APP(RID, "ERROR", "Uncaught Exception \t{\"errorType\":\"Error\",\"errorMessage\":\"x\",\"stack\":[\"a\"]}")
		  APP(RID, "INFO", "transaction {\"note\":\"Processing message x\"}")
		  APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T3', type: 'DEBIT', userId: 'u', metadata: 'Processing message x\tINFO\ty', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"));
	CHECK(R.n_events == 5);
	CHECK(count_kind(LP_MALFORMED) == 1);	/* the JSON line: a data-less message with the marker */
	CHECK_STR(K(ev(0)), "report");
	CHECK_STR(K(ev(1)), "skip");
	CHECK_STR(K(ev(2)), "uncaught_exception");
	CHECK_STR(K(ev(4)), "transaction");
}

/* D3: oversized events and values are malformed with their reason, the rest parses */
static void
test_limits(void)
{
	size_t		big = 3000;
	char	   *id = malloc(big + 1);
	char	   *text = malloc(big + 4096);

	memset(id, 'r', big);
	id[big] = '\0';

	/* a request id over the limit, on an application line and a platform line */
	snprintf(text, big + 4096, "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t%s\tINFO\tStart syncing the balance { transaction: { id: 'T1' } }\n\n"
			 "2024-01-14T21:00:00.216Z END RequestId: %s\n\n"
			 "2024-01-14T21:00:00.216Z END RequestId: " RID "\n", id, id);
	parse(text);
	CHECK(R.n_events == 3);
	CHECK_STR(ev(0)->reason, "out_of_range");
	CHECK(ev(0)->intended_kind == LP_TRANSACTION);
	CHECK(ev(0)->request_id.ptr == NULL);
	CHECK(strstr(ev(0)->body, "transaction: the request id at line 1, column 51 is 3000 bytes long, more than the limit of 256") != NULL);
	CHECK_STR(ev(1)->reason, "out_of_range");
	CHECK(ev(1)->intended_kind == LP_END);
	CHECK(ev(1)->request_id.ptr == NULL);
	CHECK_STR(K(ev(2)), "end");

	/* a message id, a transaction id, a user id over the limit */
	snprintf(text, big + 4096, APP(RID, "INFO", "Processing message %s"), id);
	parse(text);
	CHECK_STR(ev(0)->reason, "out_of_range");
	CHECK(ev(0)->intended_kind == LP_PROCESSING_MESSAGE && ev(0)->message_id.ptr == NULL);
	snprintf(text, big + 4096, APP(RID, "INFO", "Start syncing the balance { transaction: { id: '%s', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"), id);
	parse(text);
	CHECK_STR(ev(0)->reason, "out_of_range");
	CHECK(strstr(ev(0)->body, "transaction: key 'id' at line 1, column 140 is 3000 bytes long, more than the limit of 256") != NULL);
	snprintf(text, big + 4096, APP(RID, "ERROR", "Subscription balance and payment balance are not in sync { userId: '%s', subscriptionBalance: 1, paymentBalance: 2 }"), id);
	parse(text);
	CHECK_STR(ev(0)->reason, "out_of_range");
	CHECK(ev(0)->intended_kind == LP_BALANCE_ERROR);
	/* at the limit: accepted */
	id[LP_MAX_FIELD_BYTES] = '\0';
	snprintf(text, big + 4096, APP("%s", "INFO", "Start syncing the balance { transaction: { id: '%s', userId: 'u', currency: 'BHD', amount: 1, vat: 0, oldBalance: 1, newBalance: 0 } }"), id, id);
	parse(text);
	CHECK_STR(K(ev(0)), "transaction");
	CHECK(ev(0)->request_id.len == LP_MAX_FIELD_BYTES);
	free(id);
	free(text);

	/* an event over LP_MAX_EVENT_BYTES: too_large, its raw cut at a character start, the next event parsed */
	{
		size_t		n = LP_MAX_EVENT_BYTES + 100;
		char	   *huge = malloc(n + 512);
		size_t		k = (size_t) snprintf(huge, 512, "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t%s\tINFO\tStart syncing the balance { transaction: { id: 'T1', metadata: '", RID);

		while (k < n)
			memcpy(huge + k, "\xc3\xa9", 2), k += 2;	/* é: two bytes each */
		k += (size_t) snprintf(huge + k, 512, "' } }\n\n2024-01-14T21:00:00.216Z END RequestId: %s\n", RID);
		parse_len(huge, k);
		CHECK(R.n_events == 2);
		CHECK_STR(ev(0)->reason, "too_large");
		CHECK(ev(0)->intended_kind == LP_TRANSACTION);
		CHECK_STR(S(ev(0)->request_id), RID);
		CHECK(ev(0)->has_logged_at && ev(0)->logged_at_us == 1705266001500000LL);
		CHECK(ev(0)->raw.len <= LP_RAW_EXCERPT_BYTES && ev(0)->raw.len >= LP_RAW_EXCERPT_BYTES - 3);
		CHECK(((unsigned char) ev(0)->raw.ptr[ev(0)->raw.len] & 0xC0) != 0x80);
		CHECK(ev(0)->raw_bytes > LP_MAX_EVENT_BYTES);
		CHECK(ev(0)->body_len < 512);
		CHECK_STR(K(ev(1)), "end");
		CHECK(ev(1)->raw_bytes == ev(1)->raw.len);

		/* no timestamp at all, and a platform line */
		parse_len(huge + 25, k - 25);
		CHECK_STR(ev(0)->reason, "too_large");
		CHECK(ev(0)->intended_kind == LP_KIND_NONE && !ev(0)->has_logged_at);
		memcpy(huge + 25, "START RequestId: x ", 19);
		parse_len(huge, k);
		CHECK_STR(ev(0)->reason, "too_large");
		CHECK(ev(0)->intended_kind == LP_START);
		/* bytes that are no UTF-8 (continuation bytes only): the excerpt is still never empty */
		memset(huge + 100, 0x80, LP_MAX_EVENT_BYTES);
		parse_len(huge, k);
		CHECK_STR(ev(0)->reason, "too_large");
		CHECK(ev(0)->raw.len >= LP_RAW_EXCERPT_BYTES - 3 && ev(0)->raw.len <= LP_RAW_EXCERPT_BYTES);
		free(huge);
	}
}

/* D4: lone CR line ends and a byte order mark */
static void
test_line_ends_and_bom(void)
{
	size_t		n;
	char	   *lf_text = read_gz(SAMPLE_2024, &n);
	char	   *cr_text,
			   *bom_text;
	lp_result	lf;

	CHECK(lf_text != NULL);
	if (lf_text == NULL)
		return;
	CHECK(lp_parse(lf_text, n, NULL, &lf) == LP_OK);
	CHECK(lf.n_events == 83);

	/* every LF a CR: the same events and bodies */
	cr_text = malloc(n);
	for (size_t i = 0; i < n; i++)
		cr_text[i] = lf_text[i] == '\n' ? '\r' : lf_text[i];
	parse_len(cr_text, n);
	CHECK(R.n_events == lf.n_events);
	CHECK(count_kind(LP_TRANSACTION) == 10);
	for (size_t i = 0; i < R.n_events && i < lf.n_events; i++)
	{
		CHECK(R.events[i].kind == lf.events[i].kind);
		CHECK_STR(R.events[i].body, lf.events[i].body);
		CHECK(R.events[i].raw.len == lf.events[i].raw.len);
	}

	/* a byte order mark first: the same events, raw without it */
	bom_text = malloc(n + 3);
	memcpy(bom_text, "\xef\xbb\xbf", 3);
	memcpy(bom_text + 3, lf_text, n);
	parse_len(bom_text, n + 3);
	CHECK(R.n_events == lf.n_events);
	CHECK(count_kind(LP_MALFORMED) == 0);
	CHECK(R.events[0].raw.ptr == bom_text + 3);
	for (size_t i = 0; i < R.n_events && i < lf.n_events; i++)
		CHECK_STR(R.events[i].body, lf.events[i].body);
	/* a BOM anywhere else is text */
	parse("2024-01-14T21:00:00.216Z END RequestId: a\n\xef\xbb\xbf" "2024-01-14T21:00:00.216Z END RequestId: b\n");
	CHECK(R.n_events == 1);
	CHECK(lp_bom_length("\xef\xbb", 2) == 0 && lp_bom_length("\xef\xbb\xbfx", 4) == 3);

	/* mixed line ends; a CR inside a message line breaks it; a backtick string across a CR */
	parse("2024-01-14T21:00:00.090Z START RequestId: a Version: 1\r"
		  "2024-01-14T21:00:00.216Z END RequestId: a\r\n"
		  "2024-01-14T21:00:00.225Z REPORT RequestId: a\tDuration: 1 ms\r"
		  "XRAY TraceId: 1-2\tSampled: true\r\r"
		  "2024-01-14T21:00:00.300Z 2024-01-14T21:00:00.300Z\ta\tERROR\tAn error occured while syncing\r    at x (y.js:1:2)\r\n    at z\r"
		  "2024-01-14T21:00:00.400Z 2024-01-14T21:00:00.400Z\ta\tINFO\tStart syncing the balance {\r  transaction: {\r    id: 'T1',\r"
		  "    type: 'DEBIT',\r    userId: 'u',\r    metadata: `{\"a\":\r\"b\"}`,\r    currency: 'BHD',\r    amount: 1,\r    vat: 0,\r    oldBalance: 1,\r    newBalance: 0\r  }\r}\r");
	CHECK(R.n_events == 5);
	CHECK_STR(K(ev(0)), "start");
	CHECK_STR(K(ev(1)), "end");
	CHECK_STR(K(ev(2)), "report");
	CHECK(strstr(ev(2)->body, "\"xray_trace_id\":\"1-2\"") != NULL);
	CHECK_STR(ev(3)->body, "{\"message\":\"An error occured while syncing\\n    at x (y.js:1:2)\\n    at z\"}");
	CHECK_STR(K(ev(4)), "transaction");
	CHECK(strstr(ev(4)->body, "\"metadata\":{\"a\":\"b\"}") != NULL);
	/* a single-quoted string cannot span a CR, as it cannot span an LF */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T\r1' } }"));
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK(strstr(ev(0)->body, "line break inside a quoted string at line 1, column 142") != NULL);

	lp_free(&lf);
	free(lf_text);
	free(cr_text);
	free(bom_text);
}

/* S3: a key twice in one object literal is a malformed event naming the key */
static void
test_duplicate_keys(void)
{
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T1', userId: 'u', currency: 'BHD', amount: 5, amount: 500, vat: 0, oldBalance: 1, newBalance: 0 } }"));
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK(ev(0)->intended_kind == LP_TRANSACTION);
	CHECK_STR(ev(0)->body, "{\"reason\":\"malformed_event\",\"detail\":\"transaction: duplicate key 'amount' at line 1, column 187\","
			  "\"intended_kind\":\"transaction\"}");
	/* quoted and bare spellings of one name; the outer object; a rejection's data */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T1', 'id': 'T2' } }"));
	CHECK(strstr(ev(0)->body, "duplicate key 'id' at line 1") != NULL);
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: { id: 'T1' }, transaction: { id: 'T2' } }"));
	CHECK(strstr(ev(0)->body, "duplicate key 'transaction'") != NULL);
	parse(APP(RID, "INFO", "{ message: 'negative balance', data: { userId: 'u', currentBalance: -1, currentBalance: 5, transactionId: 'T' } }"));
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK(ev(0)->intended_kind == LP_NEGATIVE_BALANCE_REJECTION);
	/* the same name in two different objects is fine */
	parse(APP(RID, "INFO", CURRENT_TXN("{ id: 1, userId: 2 }", "5")));
	CHECK_STR(K(ev(0)), "transaction");
	/* a large object (the sorting path): the later duplicate is named */
	{
		char		text[8192];
		size_t		k = (size_t) snprintf(text, sizeof(text), "2024-01-14T21:00:00.104Z 2024-01-14T21:00:01.500Z\t%s\tINFO\t"
										  "Start syncing the balance { transaction: { id: 'T1', userId: 'u', currency: 'BHD', amount: 5, vat: 0, "
										  "oldBalance: 1, newBalance: 0", RID);

		for (int i = 0; i < 100; i++)
			k += (size_t) snprintf(text + k, sizeof(text) - k, ", k%d: %d", i, i);
		snprintf(text + k, sizeof(text) - k, ", k77: 1, k3: 2 } }");
		parse(text);
		CHECK_STR(ev(0)->reason, "malformed_event");
		CHECK(strstr(ev(0)->body, "duplicate key 'k77'") != NULL);
		snprintf(text + k, sizeof(text) - k, " } }");
		parse(text);
		CHECK_STR(K(ev(0)), "transaction");
	}
	/* JSON with a duplicate name: a metric is malformed; jsonb would keep one silently */
	parse("2023-12-12T12:00:00.272Z {\"_aws\":{\"Timestamp\":1},\"n\":1,\"n\":2}\n");
	CHECK_STR(ev(0)->reason, "malformed_event");
	CHECK(strstr(ev(0)->body, "metric: duplicate key \\\"n\\\" at line 1, column 56") != NULL);
}

/*
 * Issue 8: every field rule of a data event lives in the parser.  The text of
 * a data event of kind `form` whose `key` has the value `value` (NULL: the
 * key left out), the other keys valid.
 */
static void
data_event_with(char *out, size_t size, const char *form, const char *key, const char *value)
{
	static const char *const current[][2] = {
		{"id", "'01HRV8000000000000000000A1'"}, {"type", "'DEBIT'"}, {"source", "'MANUAL_DEDUCTION'"},
		{"action", "'DELIVERY_DEDUCTION'"}, {"userId", "'u-8'"}, {"paymentBalance", "90"},
		{"updatePaymentBalance", "true"}, {"metadata", "undefined"}, {"currency", "'SAR'"},
		{"amount", "10"}, {"vat", "0"}, {"oldBalance", "100"}, {"newBalance", "90"}, {NULL, NULL}
	};
	static const char *const legacy[][2] = {
		{"id", "'01HRV8000000000000000000A1'"}, {"userId", "'u-8'"}, {"currency", "'SAR'"},
		{"amount", "10"}, {"vat", "0"}, {"oldBalance", "100"}, {"newBalance", "90"}, {NULL, NULL}
	};
	static const char *const balance_error[][2] = {
		{"userId", "'u-8'"}, {"subscriptionBalance", "5"}, {"paymentBalance", "6"}, {NULL, NULL}
	};
	static const char *const rejection[][2] = {
		{"userId", "'u-8'"}, {"currentBalance", "-5"}, {"transactionId", "'01HRV8000000000000000000R1'"}, {NULL, NULL}
	};
	const char *const (*fields)[2] = strcmp(form, "current") == 0 ? current : strcmp(form, "legacy") == 0 ? legacy :
		strcmp(form, "balance_error") == 0 ? balance_error : rejection;
	size_t		k;

	if (strcmp(form, "current") == 0 || strcmp(form, "legacy") == 0)
		k = (size_t) snprintf(out, size, "2024-03-05T10:00:00.000Z 2024-03-05T10:00:00.000Z\t" RID "\tINFO\tStart syncing the balance { transaction: {");
	else if (strcmp(form, "balance_error") == 0)
		k = (size_t) snprintf(out, size, "2024-03-05T10:00:00.000Z 2024-03-05T10:00:00.000Z\t" RID "\tERROR\tSubscription balance and payment balance are not in sync {");
	else
		k = (size_t) snprintf(out, size, "2024-03-05T10:00:00.000Z 2024-03-05T10:00:00.000Z\t" RID "\tINFO\t{ message: 'Subscriber will have a negative balance', data: {");
	for (int i = 0; fields[i][0] != NULL; i++)
	{
		const char *v = strcmp(fields[i][0], key) == 0 ? value : fields[i][1];

		if (v != NULL)
			k += (size_t) snprintf(out + k, size - k, " %s: %s,", fields[i][0], v);
	}
	snprintf(out + k, size - k, "%s", (strcmp(form, "current") == 0 || strcmp(form, "legacy") == 0 || strcmp(form, "rejection") == 0) ? " } }\n" : " }\n");
}

static void
test_field_rules(void)
{
	static const struct
	{
		const char *form;		/* current, legacy, balance_error, rejection */
		const char *key;
		const char *value;		/* NULL: left out */
		const char *reason;		/* NULL: accepted */
		const char *detail;		/* part of the detail */
	}			cases[] = {
		/* the valid events themselves */
		{"current", "", NULL, NULL, NULL},
		{"legacy", "", NULL, NULL, NULL},
		{"balance_error", "", NULL, NULL, NULL},
		{"rejection", "", NULL, NULL, NULL},
		/* required ids and strings; every string non-empty */
		{"current", "id", NULL, "missing_field", "required key 'id' is missing"},
		{"current", "id", "''", "bad_field", "key 'id' at line 1, column 140 is not a non-empty string"},
		{"current", "userId", "undefined", "bad_field", "is not a non-empty string"},
		{"current", "source", "''", "bad_field", "key 'source' at line 1, column 193 is not a non-empty string or undefined"},
		{"current", "action", "''", "bad_field", "key 'action'"},
		{"current", "source", "undefined", NULL, NULL},
		{"current", "action", NULL, NULL, NULL},
		/* the current form's type: required, CREDIT or DEBIT */
		{"current", "type", "'CREDIT'", NULL, NULL},
		{"current", "type", "'REFUND'", "bad_field", "key 'type' at line 1, column 176 is not CREDIT or DEBIT"},
		{"current", "type", "'debit'", "bad_field", "is not CREDIT or DEBIT"},
		{"current", "type", "'DEBIT '", "bad_field", "is not CREDIT or DEBIT"},
		{"current", "type", "''", "bad_field", "key 'type'"},
		{"current", "type", NULL, "missing_field", "required key 'type' is missing"},
		{"current", "type", "undefined", "bad_field", "key 'type'"},
		/* currency: three capital letters */
		{"current", "currency", "'sar'", "bad_field", "is not a currency code (three capital letters)"},
		{"current", "currency", "'SARR'", "bad_field", "is not a currency code"},
		{"current", "currency", "'S1R'", "bad_field", "is not a currency code"},
		{"current", "currency", "''", "bad_field", "key 'currency'"},
		{"current", "currency", NULL, "missing_field", "required key 'currency' is missing"},
		{"legacy", "currency", "'Sar'", "bad_field", "is not a currency code"},
		/* money below 10^15 in magnitude, in every money field of every kind */
		{"current", "amount", "999999999999999.9999", NULL, NULL},
		{"current", "amount", "-999999999999999", NULL, NULL},
		{"current", "amount", "0.00001e19", NULL, NULL},
		{"current", "amount", "0e900", NULL, NULL},
		{"current", "amount", "1e-1000", NULL, NULL},
		{"current", "amount", "1000000000000000", "out_of_range", "key 'amount' at line 1, column 352 is money of 10^15 or more"},
		{"current", "amount", "-1e15", "out_of_range", "is money of 10^15 or more"},
		{"current", "amount", "0.0001e19", "out_of_range", "is money of 10^15 or more"},
		{"current", "amount", "1e21", "out_of_range", "is money of 10^15 or more"},
		{"current", "vat", "1E+15", "out_of_range", "key 'vat'"},
		{"current", "oldBalance", "-1000000000000000.5", "out_of_range", "key 'oldBalance'"},
		{"current", "newBalance", "12345678901234567", "out_of_range", "key 'newBalance'"},
		{"current", "paymentBalance", "1e15", "out_of_range", "key 'paymentBalance'"},
		{"current", "paymentBalance", "undefined", NULL, NULL},
		{"legacy", "amount", "1e15", "out_of_range", "key 'amount'"},
		{"balance_error", "subscriptionBalance", "1e15", "out_of_range", "key 'subscriptionBalance'"},
		{"balance_error", "paymentBalance", "-1e16", "out_of_range", "key 'paymentBalance'"},
		{"balance_error", "userId", "''", "bad_field", "key 'userId'"},
		{"rejection", "currentBalance", "1e15", "out_of_range", "key 'currentBalance'"},
		/* a rejection's transactionId is required (the parser's rule; SQL had it optional) */
		{"rejection", "transactionId", NULL, "missing_field", "required key 'transactionId' is missing"},
		{"rejection", "transactionId", "undefined", "bad_field", "key 'transactionId'"},
		{"rejection", "transactionId", "''", "bad_field", "key 'transactionId'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		text[2048];

		data_event_with(text, sizeof(text), cases[i].form, cases[i].key, cases[i].value);
		parse(text);
		if (cases[i].reason == NULL)
		{
			if (ev(0)->kind == LP_MALFORMED)
				fprintf(stderr, "case %zu (%s %s): %s\n", i, cases[i].form, cases[i].key, ev(0)->body);
			CHECK(ev(0)->kind != LP_MALFORMED);
			continue;
		}
		if (ev(0)->reason == NULL || strcmp(ev(0)->reason, cases[i].reason) != 0 || strstr(ev(0)->body, cases[i].detail) == NULL)
			fprintf(stderr, "case %zu (%s %s %s): %s\n", i, cases[i].form, cases[i].key,
					cases[i].value ? cases[i].value : "(left out)", ev(0)->body);
		CHECK_STR(ev(0)->reason, cases[i].reason);
		CHECK(strstr(ev(0)->body, cases[i].detail) != NULL);
		/* the body names the key, and the event's own id when it was readable */
		{
			char		field[64];

			snprintf(field, sizeof(field), "\"field\":\"%s\"", cases[i].key);
			CHECK(strstr(ev(0)->body, field) != NULL);
		}
		if (strcmp(cases[i].form, "balance_error") == 0 || strcmp(cases[i].key, "id") == 0 || strcmp(cases[i].key, "transactionId") == 0)
			CHECK(strstr(ev(0)->body, "\"txn_id\"") == NULL);
		else
			CHECK(strstr(ev(0)->body, strcmp(cases[i].form, "rejection") == 0 ? "\"txn_id\":\"01HRV8000000000000000000R1\"}"
						 : "\"txn_id\":\"01HRV8000000000000000000A1\"}") != NULL);
	}

	/* a data object that is no object names its key too */
	parse(APP(RID, "INFO", "Start syncing the balance { transaction: 5 }"));
	CHECK_STR(ev(0)->reason, "bad_field");
	CHECK(strstr(ev(0)->body, "\"field\":\"transaction\"}") != NULL);

	/* the value rules the tables' CHECK constraints share */
	CHECK(lp_currency_code_valid("BHD", 3) && !lp_currency_code_valid("BH", 2) && !lp_currency_code_valid("bhd", 3) &&
		  !lp_currency_code_valid("BHD\0", 4) && !lp_currency_code_valid("B@D", 3) && !lp_currency_code_valid("B[D", 3));
	CHECK(lp_transaction_type_valid("CREDIT", 6) && lp_transaction_type_valid("DEBIT", 5) &&
		  !lp_transaction_type_valid("CREDITS", 7) && !lp_transaction_type_valid("DEBI", 4) &&
		  !lp_transaction_type_valid("credit", 6));
	CHECK(lp_money_in_range("0", 1) && lp_money_in_range("-0.0", 4) && lp_money_in_range("999999999999999", 15) &&
		  lp_money_in_range(".5", 2) && lp_money_in_range("+5", 2) && lp_money_in_range("1e14", 4) &&
		  lp_money_in_range("100e12", 6) && lp_money_in_range("0.01e16", 7));
	CHECK(!lp_money_in_range("1000000000000000", 16) && !lp_money_in_range("-1e15", 5) &&
		  !lp_money_in_range("0.1e16", 6) && !lp_money_in_range("10e14", 5) && !lp_money_in_range("1e1000", 6));
	/* no number at all is never in range */
	CHECK(!lp_money_in_range("NaN", 3) && !lp_money_in_range("", 0) && !lp_money_in_range("1e1001", 6) &&
		  !lp_money_in_range("5.", 2));
}

/* every kind has a name, a family and a body; a short buffer is cut, never overrun */
static void
test_kind_catalog(void)
{
	char		buf[512];
	char		tiny[8];

	for (int k = 0; k < LP_KIND_COUNT; k++)
	{
		size_t		need = lp_kind_describe_body((lp_kind) k, buf, sizeof(buf));

		CHECK(lp_kind_name((lp_kind) k) != NULL && lp_kind_family((lp_kind) k) != NULL);
		CHECK(need > 0 && need < sizeof(buf) && strlen(buf) == need);
		CHECK(lp_kind_describe_body((lp_kind) k, NULL, 0) == need);
		memset(tiny, 'x', sizeof(tiny));
		CHECK(lp_kind_describe_body((lp_kind) k, tiny, sizeof(tiny)) == need);
		CHECK(strlen(tiny) == (need < sizeof(tiny) ? need : sizeof(tiny) - 1));
	}
	CHECK(lp_kind_family(LP_KIND_NONE) == NULL && lp_kind_family(LP_KIND_COUNT) == NULL);
	CHECK(lp_kind_describe_body(LP_KIND_COUNT, buf, sizeof(buf)) == 0);
	CHECK_STR(lp_kind_family(LP_BALANCE_ERROR), "data");
	lp_kind_describe_body(LP_BALANCE_ERROR, buf, sizeof(buf));
	CHECK_STR(buf, "{\"userId\", \"subscriptionBalance\", \"paymentBalance\", \"txn_id\"}");
	lp_kind_describe_body(LP_NEGATIVE_BALANCE_REJECTION, buf, sizeof(buf));
	CHECK_STR(buf, "{\"userId\", \"currentBalance\", \"transactionId\", \"message\"}");
}

int
main(void)
{
	test_json_reader();
	test_special_byte_offsets();
	test_samples();
	test_platform();
	test_app_kinds();
	test_transactions();
	test_metadata();
	test_numbers();
	test_balance_errors_and_links();
	test_rejections();
	test_truncated_and_malformed();
	test_timestamps();
	test_splitting();
	test_progress();
	test_run_together();
	test_limits();
	test_line_ends_and_bom();
	test_duplicate_keys();
	test_field_rules();
	CHECK(lp_kind_name(LP_KIND_NONE) == NULL && lp_kind_name(LP_KIND_COUNT) == NULL);
	CHECK_STR(lp_kind_name(LP_NEGATIVE_BALANCE_REJECTION), "negative_balance_rejection");
	test_kind_catalog();
	lp_free(&R);
	return unit_summary("logparse");
}

/*
 * Unit tests of the dashboard's SVG charts (src/core/svgchart.c): escaping,
 * axis maxima, the elements drawn, bad arguments.
 */
#include <stdlib.h>

#include "svgchart.h"
#include "unit.h"

typedef struct Buf
{
	char		data[65536];
	size_t		len;
} Buf;

static void
append(void *ctx, const char *text, size_t len)
{
	Buf		   *b = ctx;

	if (b->len + len < sizeof(b->data))
	{
		memcpy(b->data + b->len, text, len);
		b->len += len;
		b->data[b->len] = '\0';
	}
}

static int
count(const char *haystack, const char *needle)
{
	int			n = 0;
	const char *p = haystack;

	while ((p = strstr(p, needle)) != NULL)
	{
		n++;
		p += strlen(needle);
	}
	return n;
}

int
main(void)
{
	Buf		   *b = calloc(1, sizeof(Buf));
	static const char *const days[] = {"2024-01-01", "2024-01-02", "2024-01-03"};
	static const char *const names[] = {"BHD", "<script>&\"'"};
	static const double values[] = {1, 2, 3, 10, -5, 0};
	svg_chart	chart = {SVG_LINES, "Wallet <liability>", "amount", days, 3, names, 2, values};

	svg_write_escaped("a&b<c>d\"e'f", append, b);
	CHECK_STR(b->data, "a&amp;b&lt;c&gt;d&quot;e&#39;f");

	CHECK_CLOSE(svg_nice_max(0), 1, 1e-12);
	CHECK_CLOSE(svg_nice_max(7), 10, 1e-12);
	CHECK_CLOSE(svg_nice_max(10), 10, 1e-12);
	CHECK_CLOSE(svg_nice_max(11), 20, 1e-12);
	CHECK_CLOSE(svg_nice_max(2.2), 2.5, 1e-12);
	CHECK_CLOSE(svg_nice_max(3680), 5000, 1e-12);
	CHECK_CLOSE(svg_nice_max(0.003), 0.005, 1e-12);

	b->len = 0;
	b->data[0] = '\0';
	CHECK(svg_write_chart(&chart, append, b) == 0);
	CHECK(strncmp(b->data, "<svg ", 5) == 0);
	CHECK(count(b->data, "</svg>") == 1);
	CHECK(count(b->data, "<polyline") == 2);
	CHECK(strstr(b->data, "<script>") == NULL);
	CHECK(strstr(b->data, "&lt;script&gt;&amp;&quot;&#39;") != NULL);
	CHECK(strstr(b->data, "Wallet &lt;liability&gt;") != NULL);
	/* a negative value gives a negative axis: -5 rounds to -5, 10 to 10 */
	CHECK(strstr(b->data, ">-5</text>") != NULL);
	CHECK(strstr(b->data, ">10</text>") != NULL);

	b->len = 0;
	b->data[0] = '\0';
	chart.kind = SVG_STACKED_BARS;
	CHECK(svg_write_chart(&chart, append, b) == 0);
	/* a rect per nonzero value plus one per legend entry */
	CHECK(count(b->data, "class=\"series\"") == 5);
	CHECK(count(b->data, "<rect") == 5 + 2);

	b->len = 0;
	b->data[0] = '\0';
	chart.ncategories = 0;
	CHECK(svg_write_chart(&chart, append, b) == 0);
	CHECK(strstr(b->data, "no data in the period") != NULL);

	chart.ncategories = 3;
	chart.values = NULL;
	CHECK(svg_write_chart(&chart, append, b) == -1);
	CHECK(svg_write_chart(NULL, append, b) == -1);
	free(b);
	return unit_summary("svgchart");
}

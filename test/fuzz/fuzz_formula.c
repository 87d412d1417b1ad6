/*
 * Fuzz target of the formula rule (src/core/formula.c): any bytes are read
 * without going past their end, and neutralized text (a leading apostrophe)
 * is never taken for a formula; leading blanks never hide a formula sign
 * (a lone leading tab or CR counts only at the very start).
 */
#include <stdlib.h>
#include <string.h>

#include "formula.h"

int			LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char	   *text = malloc(size + 3);

	if (text == NULL)
		return 0;
	memcpy(text + 2, data, size);
	text[size + 2] = '\0';
	/* exactly the bytes, NUL-terminated, as the reports pass them */
	(void) formula_like(text + 2);
	text[1] = '\'';
	if (formula_like(text + 1))
		__builtin_trap();
	text[0] = ' ';
	text[1] = ' ';
	if (size > 0 && data[0] != '\t' && data[0] != '\r' &&
		formula_like(text + 2) && !formula_like(text))
		__builtin_trap();
	free(text);
	return 0;
}

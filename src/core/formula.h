/*
 * formula.h: which report text a spreadsheet could take for a formula (or a
 * DDE call), the one rule behind the leading apostrophe of the CSV reports
 * and the workbook (export_glue.c, workbook_glue.c).
 *
 * Plain C, no PostgreSQL headers; text is UTF-8.
 */
#ifndef CALO_FORMULA_H
#define CALO_FORMULA_H

#include <stdbool.h>

/*
 * true when text begins with = + - @ | or their full-width forms
 * (U+FF1D U+FF0B U+FF0D U+FF20 U+FF5C), possibly after blanks and line
 * breaks (space, tab, CR, LF, VT, FF, U+00A0, U+3000), or begins with a tab
 * or CR at all.
 */
extern bool formula_like(const char *text);

#endif

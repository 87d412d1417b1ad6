/*
 * v11_glue.h: what this library says about a database whose calo_recon is
 * still at version 1.1 (README "Dump, restore and upgrade"): the one check
 * and the one message (0A000, HINT ALTER EXTENSION calo_recon UPDATE) of the
 * paths of 1.1 that it no longer runs.
 */
#ifndef CALO_V11_GLUE_H
#define CALO_V11_GLUE_H

/*
 * ERROR 0A000 "calo_recon.<what> of calo_recon 1.1 is not supported by this
 * library", with why as its DETAIL and the update as its HINT.
 */
extern void calo_v11_unsupported(const char *what, const char *why) pg_attribute_noreturn();

/* The same error when this database's calo_recon is at version 1.1. */
extern void calo_refuse_v11(const char *what, const char *why);

#endif

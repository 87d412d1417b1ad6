/*
 * v11_glue.c: the paths of calo_recon 1.1 this library no longer runs
 * (v11_glue.h).  A database created at 1.1 keeps the 1.1 definitions until
 * ALTER EXTENSION calo_recon UPDATE, while the library is the newest: where
 * the library needs an object 1.1 does not have, it says so.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "v11_glue.h"

void
calo_v11_unsupported(const char *what, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("calo_recon.%s of calo_recon 1.1 is not supported by this library", what),
			 errdetail("%s", why),
			 errhint("Run ALTER EXTENSION calo_recon UPDATE.")));
}

/* extversion of calo_recon in this database; NULL when it is not installed */
static char *
installed_version(void)
{
	Oid			ext = get_extension_oid("calo_recon", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	if (!OidIsValid(ext))
		return NULL;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

void
calo_refuse_v11(const char *what, const char *why)
{
	char	   *version = installed_version();

	if (version != NULL && strcmp(version, "1.1") == 0)
		calo_v11_unsupported(what, why);
}

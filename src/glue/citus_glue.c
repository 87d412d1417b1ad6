/*
 * citus_glue.c: where the extension's tables live on a Citus cluster (README
 * "Scaling out with Citus").  distribute() makes the wallet tables hash
 * distributed by user_id in one colocation group with
 * calo_recon.shard_anchors, which holds one row per shard group; a query over
 * the anchors runs once per shard group on the node of its placements, where
 * these helpers name the colocated shards the per-shard work reads and
 * writes.  Citus's catalogs are read through SPI, by name, so the extension
 * neither links with Citus nor needs it installed.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "citus_glue.h"

bool
calo_citus_is_distributed(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};

	bool		distributed;

	/* one node, Citus not installed: no query */
	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_partition "
							  "WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							  "  AND partmethod OPERATOR(pg_catalog.=) 'h'",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_partition");
	distributed = SPI_processed > 0;
	SPI_finish();
	return distributed;
}

Oid
calo_citus_colocated_shard(Oid anchor_shard, const char *table, char **name)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	char	   *anchor_name = get_rel_name(anchor_shard);
	char	   *suffix = anchor_name ? strrchr(anchor_name, '_') : NULL;
	char	   *end;
	long long	shardid;
	bool		isnull;
	Datum		relid;

	shardid = suffix ? strtoll(suffix + 1, &end, 10) : 0;
	if (suffix == NULL || *end != '\0' || shardid <= 0
		|| strncmp(anchor_name, "shard_anchors_", strlen("shard_anchors_")) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation %u is not a shard of calo_recon.shard_anchors", anchor_shard),
				 errhint("The per-shard functions are called by calo_recon's own queries over calo_recon.shard_anchors on a Citus cluster.")));
	args[0] = Int64GetDatum((int64) shardid);
	args[1] = CStringGetTextDatum(psprintf("calo_recon.%s", table));
	if (SPI_execute_with_args("SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid), "
							  "       pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))::pg_catalog.oid "
							  "FROM pg_catalog.pg_dist_shard a "
							  "JOIN pg_catalog.pg_dist_partition ap ON ap.logicalrelid OPERATOR(pg_catalog.=) a.logicalrelid "
							  "JOIN pg_catalog.pg_dist_partition sp ON sp.colocationid OPERATOR(pg_catalog.=) ap.colocationid "
							  "JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid OPERATOR(pg_catalog.=) sp.logicalrelid "
							  "     AND s.shardminvalue OPERATOR(pg_catalog.=) a.shardminvalue "
							  "WHERE a.shardid OPERATOR(pg_catalog.=) $1 "
							  "  AND sp.logicalrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($2)",
							  2, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_shard");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("calo_recon.%s is not distributed in the colocation group of calo_recon.shard_anchors", table),
				 errhint("Run calo_recon.distribute() on the coordinator.")));
	*name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	relid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	return isnull ? InvalidOid : DatumGetObjectId(relid);
}

char *
calo_citus_reference_shard(const char *table)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(psprintf("calo_recon.%s", table))};

	if (SPI_execute_with_args("SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid) "
							  "FROM pg_catalog.pg_dist_shard s "
							  "JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid "
							  "WHERE s.logicalrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) "
							  "  AND p.partmethod OPERATOR(pg_catalog.=) 'n'",
							  1, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_shard");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("calo_recon.%s is not a reference table", table),
				 errhint("Run calo_recon.distribute() on the coordinator.")));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

Oid
calo_citus_local_relation(const char *table)
{
	Oid			relid = get_relname_relid(table, get_namespace_oid("calo_recon", false));
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	Oid			local = relid;

	if (!OidIsValid(relid))
		elog(ERROR, "calo_recon.%s does not exist", table);
	/* one node, Citus not installed: no query */
	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return relid;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid), "
							  "       pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))::pg_catalog.oid "
							  "FROM pg_catalog.pg_dist_shard s "
							  "JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid "
							  "WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							  "  AND p.partmethod OPERATOR(pg_catalog.=) 'n'",
							  1, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_shard");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		shard = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("reference table calo_recon.%s has no placement on this node", table),
					 errdetail("Its shard is %s.", SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
					 errhint("Run pg_catalog.replicate_reference_tables() on the coordinator.")));
		local = DatumGetObjectId(shard);
	}
	SPI_finish();
	return local;
}

PG_FUNCTION_INFO_V1(calo_recon_is_distributed);

/* calo_recon.is_distributed() RETURNS boolean */
Datum
calo_recon_is_distributed(PG_FUNCTION_ARGS)
{
	Oid			relid = get_relname_relid("transactions", get_namespace_oid("calo_recon", false));

	PG_RETURN_BOOL(OidIsValid(relid) && calo_citus_is_distributed(relid));
}

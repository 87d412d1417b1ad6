/*
 * citus_glue.h: where the extension's tables live on a Citus cluster
 * (README "Scaling out with Citus"): whether a table is distributed, and the
 * shard of a table colocated with a given shard of calo_recon.shard_anchors.
 * calo_citus_is_distributed connects to SPI itself; the callers of the
 * others are connected.
 */
#ifndef CALO_CITUS_GLUE_H
#define CALO_CITUS_GLUE_H

#include "postgres.h"

/* true when Citus is installed and relid is one of its distributed tables */
bool		calo_citus_is_distributed(Oid relid);

/*
 * The shard of calo_recon.<table> in the same shard group as anchor_shard (a
 * shard of calo_recon.shard_anchors on this node): its quoted qualified name
 * in *name and its oid (InvalidOid when it has no placement on this node).
 */
Oid			calo_citus_colocated_shard(Oid anchor_shard, const char *table, char **name);

/* The quoted qualified name of the one shard of reference table calo_recon.<table> */
char	   *calo_citus_reference_shard(const char *table);

/*
 * The relation holding the rows of calo_recon.<table> on this node: the
 * table itself, or its shard here when it is a Citus reference table (whose
 * rows live in the shard). Connects to SPI itself.
 */
Oid			calo_citus_local_relation(const char *table);

#endif

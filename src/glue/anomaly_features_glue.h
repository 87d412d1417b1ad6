/*
 * anomaly_features_glue.h: the stored transactions read into memory with
 * their anomaly features (anomaly_features.c), for the feature view, training
 * and scoring.
 */
#ifndef CALO_ANOMALY_FEATURES_GLUE_H
#define CALO_ANOMALY_FEATURES_GLUE_H

#include "postgres.h"

#include "anomaly_features.h"
#include "utils/array.h"

typedef struct FeatureBook
{
	int64		n;
	/* per row, in output order: users by user_id (database collation), each
	 * user's rows in chain order (walk.h), as the SQL view gave them */
	char	   *txn_arena;
	int64	   *txn_off;		/* n + 1 offsets into txn_arena */
	uint32	   *user;			/* index into user_name/user_len */
	int64	   *logged_at;
	double	   *features;		/* n * FEAT_COUNT */
	double	   *context;		/* n * FEAT_CONTEXT_COUNT, when asked for */
	double	   *amount;			/* the amount as feat_row has it */
	int8	   *direction;		/* feat_direction() */
	uint16	   *currency;		/* index into currency_code/minor_unit */
	/* users */
	uint32		n_users;
	const char **user_name;
	int		   *user_len;
	/* currencies of the rows: code and minor unit (bal_minor_unit applied) */
	int			n_currencies;
	char	  **currency_code;
	int		   *minor_unit;
} FeatureBook;

/*
 * Reads calo_recon.transactions (all of them when user_ids is NULL, else
 * the rows of those users: through the user index for a few users, one
 * sequential scan for many) and computes every row's features (and, with
 * want_context, their context for the explanations). Allocates in the
 * current memory context.
 */
void		fbook_load(FeatureBook *book, ArrayType *user_ids, bool want_context);

/* true when calo_recon.transactions is a Citus distributed table (fbook_load reads the shards) */
bool		fbook_is_distributed(void);

/*
 * On a Citus worker: the book of the given users (all when NULL) over the
 * shard of transactions in the shard group of anchor_shard (a shard of
 * calo_recon.shard_anchors on this node); 55000 when it is not here.
 */
void		fbook_load_placement(FeatureBook *book, Oid anchor_shard, ArrayType *user_ids, bool want_context);

#endif

/*
 * cluster_alert_hook_glue.h: on a Citus coordinator, the insert-time alert
 * check at the end of each client statement that inserted into
 * calo_recon.transactions (see cluster_alert_hook_glue.c).
 */
#ifndef CALO_CLUSTER_ALERT_HOOK_GLUE_H
#define CALO_CLUSTER_ALERT_HOOK_GLUE_H

/* Installs the executor and utility hooks; called once, from _PG_init */
void		calo_cluster_alert_hook_install(void);

#endif

/*
 * The control thread's operations on a running gatewayd. All of these are
 * for the control thread only (they change the RCU tables and the site
 * identities in shared memory).
 */
#ifndef GATEWAYD_CONTROL_H
#define GATEWAYD_CONTROL_H

#include <jansson.h>

#include "gatewayd/gateway.h"

/*
 * Make NEXT the running set of sites: optionally write it to the sites file
 * first (PERSIST), then apply it to the tables, shared memory and nftables.
 * On success NEXT is moved into gw->sites (and left empty); on failure
 * nothing changed, ERR says why and the caller still owns NEXT.
 */
int gw_sites_replace(struct gw *gw, struct sites *next, bool persist, char err[CONF_ERR_MAX]);

/*
 * Re-read the configuration file and the sites file it names. Keys that
 * need a restart (addresses, interfaces, tenants, workers, sizes) are kept
 * and a warning names them. A file that fails to load changes nothing.
 */
int gw_reload(struct gw *gw, char err[CONF_ERR_MAX]);

/* Set and persist (state_dir/accept) the acceptance mode. */
int gw_set_accept_mode(struct gw *gw, enum shm_accept mode, char err[CONF_ERR_MAX]);

/* The persisted acceptance mode, accept when there is none. */
enum shm_accept gw_load_accept_mode(const struct conf *conf);

/*
 * Answer one control request (a JSON object, docs/architecture.md). Returns
 * the reply as a string the caller frees; never NULL unless out of memory.
 */
char *control_handle(struct gw *gw, const char *request, size_t len);

/* A site's configuration as the control protocol shows it. */
json_t *site_conf_to_json(const struct site_conf *sc);

#endif

/*
 * gateway.io = "xdp": the XDP program on pop.wan_interface that hands GRE
 * to the gateway IP to the workers' AF_XDP sockets (gatewayd/bpf/gre.bpf.c),
 * on the control thread. Each worker reads the queue of its index
 * (worker.c opens its socket and puts it in the program's map); a queue
 * with no worker would lose its GRE, so the interface may have no more
 * receive queues than gatewayd has workers.
 */
#ifndef GATEWAYD_XDP_H
#define GATEWAYD_XDP_H

#include <stddef.h>

struct gw;

/*
 * Load the program and fill in gw->xsks_fd and gw->wan_queues. Returns 0,
 * or -1 with a message in ERR (LEN bytes) that names what to change.
 */
int gw_xdp_load(struct gw *gw, char *err, size_t len);

/* Attach the loaded program to the interface: a link this process holds,
 * gone with it. Returns 0, or -1 with a message in ERR. */
int gw_xdp_attach(struct gw *gw, char *err, size_t len);

/* Detach and unload (after the workers stopped; their sockets may stay). */
void gw_xdp_close(struct gw *gw);

#endif

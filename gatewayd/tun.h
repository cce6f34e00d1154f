/*
 * Multi-queue TUN devices, one per tenant: each worker owns one queue fd of
 * every tenant's device, so the kernel spreads the return traffic over the
 * workers by flow. The devices are not persistent: the kernel removes one
 * when its last queue fd is closed, so a crashed gatewayd leaves none behind.
 */
#ifndef GATEWAYD_TUN_H
#define GATEWAYD_TUN_H

#include <stdbool.h>

#define TUN_MAX_QUEUES		256	/* the kernel's limit per device */

/*
 * Create the TUN device NAME (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE, and
 * IFF_VNET_HDR when VNET_HDR is true) or attach to it if it exists with the
 * same flags, and open N_QUEUES queues into FDS[0..N_QUEUES-1]: non-blocking,
 * close-on-exec, owned by the caller. Control thread only. Returns 0, or a
 * negative errno with every fd it opened closed and FDS set to -1.
 */
int tun_open_queues(const char *name, unsigned n_queues, bool vnet_hdr, int *fds);

/*
 * Close the N_QUEUES fds in FDS (those that are >= 0) and set them to -1.
 * The device disappears once no process holds a queue of it. Returns 0 or
 * the first close error as a negative errno (every fd is closed anyway).
 */
int tun_close_queues(int *fds, unsigned n_queues);

#endif

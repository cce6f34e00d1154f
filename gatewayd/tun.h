/*
 * Multi-queue TUN devices, one per tenant: each worker owns one queue fd of
 * every tenant's device, so the kernel spreads the return traffic over the
 * workers by flow. The devices are not persistent: the kernel removes one
 * when its last queue fd is closed, so a crashed gatewayd leaves none behind.
 */
#ifndef GATEWAYD_TUN_H
#define GATEWAYD_TUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#define TUN_MAX_QUEUES		256	/* the kernel's limit per device */

/*
 * gatewayd's queues carry a struct virtio_net_hdr before every packet
 * (IFF_VNET_HDR): what lets a write hand the kernel one large TCP or UDP
 * packet to segment (GSO) and a read take one (TSO) unsegmented.
 */
#define TUN_VNET_HDR_LEN	sizeof(struct virtio_net_hdr)

/* UDP segmentation offload: newer than Debian 12's kernel headers. */
#ifndef TUN_F_USO4
#define TUN_F_USO4		0x20
#define TUN_F_USO6		0x40
#endif

/* What gatewayd asks of a TUN with offloads: checksums, TSO, ECN, USO. */
#define TUN_OFFLOAD_TSO		(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
#define TUN_OFFLOAD_ALL		(TUN_OFFLOAD_TSO | TUN_F_USO4 | TUN_F_USO6)

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

/*
 * Let the kernel hand the vnet-header queue FD large TCP and UDP packets
 * and packets with partial checksums (TUNSETOFFLOAD with TUN_OFFLOAD_ALL,
 * or TUN_OFFLOAD_TSO on a kernel without USO). The setting is the device's:
 * every queue sees it. Control thread only. Returns 0 and the flags set in
 * *FLAGS, or a negative errno.
 */
int tun_enable_offload(int fd, unsigned *flags);

/*
 * Write the one plain packet PKT of LEN bytes to the vnet-header queue FD
 * (a header that asks nothing of the kernel goes first). Returns what
 * write(2) does, less the header: LEN when the packet went in whole.
 */
static inline ssize_t tun_write(int fd, const void *pkt, size_t len)
{
	static const struct virtio_net_hdr plain = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct iovec iov[2] = {
		{ .iov_base = (void *)&plain, .iov_len = sizeof(plain) },
		{ .iov_base = (void *)pkt, .iov_len = len },
	};
	ssize_t r = writev(fd, iov, 2);

	return r < (ssize_t)sizeof(plain) ? (r < 0 ? r : -1) : r - (ssize_t)sizeof(plain);
}

#endif

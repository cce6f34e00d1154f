#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <net/if.h>

#include "gatewayd/tun.h"

static int tun_open_queue(const char *name, bool vnet_hdr)
{
	struct ifreq ifr;
	int fd;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
	if (vnet_hdr)
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int tun_open_queues(const char *name, unsigned n_queues, bool vnet_hdr, int *fds)
{
	unsigned i;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	if (n_queues == 0 || n_queues > TUN_MAX_QUEUES)
		return -EINVAL;

	for (i = 0; i < n_queues; i++)
		fds[i] = -1;
	for (i = 0; i < n_queues; i++) {
		fds[i] = tun_open_queue(name, vnet_hdr);
		if (fds[i] < 0) {
			int err = fds[i];

			tun_close_queues(fds, i);
			fds[i] = -1;
			return err;
		}
	}
	return 0;
}

int tun_close_queues(int *fds, unsigned n_queues)
{
	int ret = 0;
	unsigned i;

	for (i = 0; i < n_queues; i++) {
		if (fds[i] < 0)
			continue;
		if (close(fds[i]) < 0 && ret == 0)
			ret = -errno;
		fds[i] = -1;
	}
	return ret;
}

int tun_enable_offload(int fd, unsigned *flags)
{
	unsigned long want = TUN_OFFLOAD_ALL;

	if (ioctl(fd, TUNSETOFFLOAD, want) < 0) {
		/* A kernel older than 6.2 knows no USO and refuses the whole set. */
		if (errno != EINVAL)
			return -errno;
		want = TUN_OFFLOAD_TSO;
		if (ioctl(fd, TUNSETOFFLOAD, want) < 0)
			return -errno;
	}
	*flags = (unsigned)want;
	return 0;
}

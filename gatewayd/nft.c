/*
 * nftables transactions: each public call builds one batch (begin, the
 * messages, end) in libnftnl's paged batch buffer and sends it with one
 * sendmsg. The kernel applies the whole batch or nothing, and answers
 * before sendmsg returns: an error for each refused message, an
 * acknowledgement for the last one (the only one that asks for it, so the
 * replies to a large batch cannot overflow the receive buffer).
 *
 * Size limits: one element list is a netlink attribute, at most 64 KiB, so
 * the addresses go into messages of NFT_ELEMS_PER_MSG each; the batch as a
 * whole only has to fit the socket's send buffer, which is raised to fit.
 */
#include <errno.h>
#include <netinet/in.h>	/* before the linux/ headers, which defer to it */
#include <netinet/ip.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "gatewayd/netlink.h"
#include "gatewayd/nft.h"

#define NFT_ELEMS_PER_MSG	2048		/* 16 bytes each: well under 64 KiB */
#define NFT_PAGE_SIZE		(256 * 1024)
#define NFT_PAGE_OVERRUN	(64 * 1024 + 4096)	/* the largest single message */
#define NFT_SET_ID		1
#define NFT_TYPE_IPADDR		7		/* nft's datatype number for ipv4_addr */
#define NFT_REPLY_TIMEOUT_MS	2000
#define NFT_BUF_SIZE		16384

static char nft_err[NFT_ERR_MAX];

const char *nft_last_error(void)
{
	return nft_err;
}

/* A batch being built: the buffer and the next sequence number. */
struct nft_batch {
	struct nftnl_batch *b;
	uint32_t seq;
	bool ack_next;			/* the next message is the last: ask for an ack */
	uint32_t last_seq;		/* the message that asked for it */
};

/* What the kernel said about a batch. */
struct nft_reply {
	uint32_t last_seq;
	bool done;			/* the last message was answered */
	int err;			/* the first error, or 0 */
	uint16_t err_type;		/* the message it refused */
	char extack[256];
};

static const char *nft_msg_name(uint16_t type)
{
	switch (type) {
	case NFT_MSG_NEWTABLE: return "add table";
	case NFT_MSG_DELTABLE: return "delete table";
	case NFT_MSG_NEWCHAIN: return "add chain";
	case NFT_MSG_NEWRULE: return "add rule";
	case NFT_MSG_NEWSET: return "add set";
	case NFT_MSG_NEWSETELEM: return "add elements";
	case NFT_MSG_DELSETELEM: return "flush set";
	case NFT_MSG_GETRULE: return "list rules";
	default: return "batch";
	}
}

static int __attribute__((format(printf, 3, 4)))
nft_fail(int err, const struct nft_reply *reply, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (reply && reply->err_type) {
		snprintf(nft_err, sizeof(nft_err), "%s: %s: %s%s%s%s", what,
			 nft_msg_name(reply->err_type), strerror(-err),
			 reply->extack[0] ? " (" : "", reply->extack,
			 reply->extack[0] ? ")" : "");
	} else {
		snprintf(nft_err, sizeof(nft_err), "%s: %s", what, strerror(-err));
	}
	return err;
}

static int nft_batch_init(struct nft_batch *nb)
{
	nb->b = nftnl_batch_alloc(NFT_PAGE_SIZE, NFT_PAGE_OVERRUN);
	if (!nb->b)
		return -ENOMEM;
	nb->seq = (uint32_t)time(NULL);
	nftnl_batch_begin(nftnl_batch_buffer(nb->b), nb->seq++);
	return nftnl_batch_update(nb->b) < 0 ? -ENOMEM : 0;
}

/* Start the next message of TYPE for FAMILY's objects in the batch. */
static struct nlmsghdr *nft_msg_in(struct nft_batch *nb, uint16_t type, uint16_t family,
				   uint16_t flags)
{
	if (nb->ack_next) {
		flags |= NLM_F_ACK;
		nb->last_seq = nb->seq;
	}
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(nb->b), type, family, flags,
				     nb->seq++);
}

/* The same for the ip table. */
static struct nlmsghdr *nft_msg(struct nft_batch *nb, uint16_t type, uint16_t flags)
{
	return nft_msg_in(nb, type, NFPROTO_IPV4, flags);
}

/* The message just built is complete. */
static int nft_msg_done(struct nft_batch *nb)
{
	return nftnl_batch_update(nb->b) < 0 ? -ENOMEM : 0;
}

/* FAMILY's table called NFT_TABLE (NFPROTO_IPV4 or NFPROTO_NETDEV). */
static int nft_put_table(struct nft_batch *nb, uint16_t type, uint16_t family, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
	nftnl_table_nlmsg_build_payload(nft_msg_in(nb, type, family, flags), t);
	nftnl_table_free(t);
	return nft_msg_done(nb);
}

/*
 * FAMILY's table gone, whether it was there or not: create, then delete
 * (the delete asks for the batch's acknowledgement when it is the LAST).
 */
static int nft_put_gone_table(struct nft_batch *nb, uint16_t family, bool last)
{
	int ret = nft_put_table(nb, NFT_MSG_NEWTABLE, family, NLM_F_CREATE);

	nb->ack_next = last;
	return ret == 0 ? nft_put_table(nb, NFT_MSG_DELTABLE, family, 0) : ret;
}

static int nft_put_set(struct nft_batch *nb)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_SET);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_IPADDR);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(struct in_addr));
	nftnl_set_set_u32(s, NFTNL_SET_ID, NFT_SET_ID);
	nftnl_set_nlmsg_build_payload(nft_msg(nb, NFT_MSG_NEWSET, NLM_F_CREATE), s);
	nftnl_set_free(s);
	return nft_msg_done(nb);
}

/* A base chain NAME of FAMILY's table on HOOK (of device DEV, or NULL), policy accept. */
static int nft_put_chain(struct nft_batch *nb, uint16_t family, const char *name, uint32_t hook,
			 const char *dev, int32_t prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	if (dev)
		nftnl_chain_set_str(c, NFTNL_CHAIN_DEV, dev);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nftnl_chain_nlmsg_build_payload(nft_msg_in(nb, NFT_MSG_NEWCHAIN, family, NLM_F_CREATE), c);
	nftnl_chain_free(c);
	return nft_msg_done(nb);
}

/* Register 1 = the frame's protocol (its EtherType). */
static struct nftnl_expr *nft_expr_meta_protocol(void)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_PROTOCOL);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	return e;
}

/* Load LEN bytes of the IPv4 header at OFFSET into register 1. */
static struct nftnl_expr *nft_expr_payload(uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	return e;
}

static struct nftnl_expr *nft_expr_cmp_eq(const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return e;
}

/* Register 1 is not in the set. */
static struct nftnl_expr *nft_expr_not_in_set(void)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, NFT_SET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, NFT_SET_ID);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	return e;
}

static struct nftnl_expr *nft_expr_drop(void)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
	return e;
}

/*
 * A rule of the N expressions E appended to CHAIN of FAMILY's table. The
 * rule owns the expressions (an allocation that failed is NULL there):
 * freed with it, whatever happens.
 */
static int nft_put_rule(struct nft_batch *nb, uint16_t family, const char *chain,
			struct nftnl_expr **e, size_t n)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	int ret = r ? 0 : -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		if (e[i] && r)
			nftnl_rule_add_expr(r, e[i]);
		else if (e[i])
			nftnl_expr_free(e[i]);
		else
			ret = -ENOMEM;
	}
	if (ret == 0) {
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, family);
		nftnl_rule_nlmsg_build_payload(nft_msg_in(nb, NFT_MSG_NEWRULE, family,
							  NLM_F_CREATE | NLM_F_APPEND), r);
		ret = nft_msg_done(nb);
	}
	if (r)
		nftnl_rule_free(r);
	return ret;
}

/* ip daddr GATEWAY_IP ip protocol gre, into E; returns how many expressions. */
static size_t nft_exprs_gre_to(struct nftnl_expr **e, const struct in_addr *gateway_ip)
{
	static const uint8_t gre = IPPROTO_GRE;

	e[0] = nft_expr_payload(offsetof(struct iphdr, daddr), sizeof(struct in_addr));
	e[1] = nft_expr_cmp_eq(gateway_ip, sizeof(*gateway_ip));
	e[2] = nft_expr_payload(offsetof(struct iphdr, protocol), sizeof(gre));
	e[3] = nft_expr_cmp_eq(&gre, sizeof(gre));
	return 4;
}

/*
 * ip daddr GATEWAY_IP ip protocol gre [ip saddr != @sites] counter drop:
 * with UNKNOWN_ONLY the rule for sources that are no site's, without it
 * the one that keeps all GRE from the kernel's own stack.
 */
static int nft_put_input_rule(struct nft_batch *nb, const struct in_addr *gateway_ip,
			      bool unknown_only)
{
	struct nftnl_expr *e[8];
	size_t n = nft_exprs_gre_to(e, gateway_ip);

	if (unknown_only) {
		e[n++] = nft_expr_payload(offsetof(struct iphdr, saddr), sizeof(struct in_addr));
		e[n++] = nft_expr_not_in_set();
	}
	e[n++] = nftnl_expr_alloc("counter");
	e[n++] = nft_expr_drop();
	return nft_put_rule(nb, NFPROTO_IPV4, NFT_CHAIN, e, n);
}

/* meta protocol ip ip daddr GATEWAY_IP ip protocol gre drop, in the netdev table. */
static int nft_put_ingress_rule(struct nft_batch *nb, const struct in_addr *gateway_ip)
{
	const uint16_t ipv4 = htons(ETH_P_IP);
	struct nftnl_expr *e[7];
	size_t n = 0;

	e[n++] = nft_expr_meta_protocol();
	e[n++] = nft_expr_cmp_eq(&ipv4, sizeof(ipv4));
	n += nft_exprs_gre_to(e + n, gateway_ip);
	e[n++] = nft_expr_drop();
	return nft_put_rule(nb, NFPROTO_NETDEV, NFT_INGRESS_CHAIN, e, n);
}

/* A DELSETELEM without an element list empties the whole set. */
static int nft_put_flush(struct nft_batch *nb)
{
	struct nlmsghdr *nlh = nft_msg(nb, NFT_MSG_DELSETELEM, 0);

	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, NFT_SET);
	return nft_msg_done(nb);
}

/* One NEWSETELEM message with IPS[0..N-1], N <= NFT_ELEMS_PER_MSG. */
static int nft_put_elems(struct nft_batch *nb, const struct in_addr *ips, size_t n)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elem *e;
	size_t i;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_SET);
	for (i = 0; i < n; i++) {
		e = nftnl_set_elem_alloc();
		if (!e) {
			nftnl_set_free(s);
			return -ENOMEM;
		}
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &ips[i], sizeof(ips[i]));
		nftnl_set_elem_add(s, e);
	}
	nftnl_set_elems_nlmsg_build_payload(nft_msg(nb, NFT_MSG_NEWSETELEM, NLM_F_CREATE), s);
	nftnl_set_free(s);
	return nft_msg_done(nb);
}

static int nft_reply_extack_cb(const struct nlattr *attr, void *data)
{
	struct nft_reply *reply = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(reply->extack, sizeof(reply->extack), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* Note the first error and whether the last message has been answered. */
static int nft_reply_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct nft_reply *reply = data;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return MNL_CB_OK;
	if (nlh->nlmsg_seq == reply->last_seq)
		reply->done = true;
	if (err->error == 0 || reply->err)
		return MNL_CB_OK;
	reply->err = err->error;
	reply->err_type = NFNL_MSG_TYPE(err->msg.nlmsg_type);
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		mnl_attr_parse(nlh, sizeof(*err), nft_reply_extack_cb, reply);
	return MNL_CB_OK;
}

static int nft_socket_open(struct mnl_socket **out, size_t sndbuf)
{
	int size = (int)sndbuf, fd, ret;

	ret = nl_socket_open(NETLINK_NETFILTER, out);
	if (ret < 0)
		return ret;
	fd = mnl_socket_get_fd(*out);
	/* FORCE passes the system's limit; CAP_NET_ADMIN allows it. */
	if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return 0;
}

/* Read the replies to a batch into REPLY until the last one. 0 or -errno. */
static int nft_read_replies(struct mnl_socket *nl, struct nft_reply *reply)
{
	static mnl_cb_t ctl_cb[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = nft_reply_cb };
	struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
	char buf[NFT_BUF_SIZE];
	ssize_t n;
	int ret;

	while (!reply->done) {
		/* Once something failed, whatever else comes is already queued. */
		ret = poll(&pfd, 1, reply->err ? 0 : NFT_REPLY_TIMEOUT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return reply->err ? 0 : -ETIMEDOUT;
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run2(buf, n, 0, mnl_socket_get_portid(nl), NULL, reply,
				  ctl_cb, NLMSG_MIN_TYPE);
		if (ret < 0)
			return -errno;
	}
	return 0;
}

/* End the batch, send it, wait for the verdict. 0 or -errno, REPLY filled. */
static int nft_batch_commit(struct nft_batch *nb, struct nft_reply *reply)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct mnl_socket *nl;
	struct msghdr msg;
	struct iovec *iov;
	size_t total = 0;
	int i, n_iov, ret;

	nftnl_batch_end(nftnl_batch_buffer(nb->b), nb->seq++);
	if (nftnl_batch_update(nb->b) < 0)
		return -ENOMEM;

	n_iov = nftnl_batch_iovec_len(nb->b);
	iov = calloc((size_t)n_iov, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	nftnl_batch_iovec(nb->b, iov, (uint32_t)n_iov);
	for (i = 0; i < n_iov; i++)
		total += iov[i].iov_len;

	ret = nft_socket_open(&nl, total + NFT_PAGE_SIZE);
	if (ret < 0)
		goto free_iov;
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &kernel;
	msg.msg_namelen = sizeof(kernel);
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)n_iov;
	memset(reply, 0, sizeof(*reply));
	reply->last_seq = nb->last_seq;
	if (sendmsg(mnl_socket_get_fd(nl), &msg, 0) < 0)
		ret = -errno;
	else
		ret = nft_read_replies(nl, reply);
	if (ret == 0 && reply->err)
		ret = reply->err;
	mnl_socket_close(nl);
free_iov:
	free(iov);
	return ret;
}

static void nft_batch_free(struct nft_batch *nb)
{
	nftnl_batch_free(nb->b);
}

int nft_setup(const struct in_addr *gateway_ip, const char *ring_interface)
{
	struct nft_reply reply = { 0 };
	struct nft_batch nb = { 0 };
	int ret;

	ret = nft_batch_init(&nb);
	if (ret < 0)
		return nft_fail(ret, NULL, "create table ip " NFT_TABLE);
	/* Both tables anew: leftovers go, whichever mode left them. */
	ret = nft_put_gone_table(&nb, NFPROTO_IPV4, false);
	if (ret == 0)
		ret = nft_put_gone_table(&nb, NFPROTO_NETDEV, false);
	if (ret == 0)
		ret = nft_put_table(&nb, NFT_MSG_NEWTABLE, NFPROTO_IPV4, NLM_F_CREATE | NLM_F_EXCL);
	if (ret == 0)
		ret = nft_put_set(&nb);
	if (ret == 0)
		ret = nft_put_chain(&nb, NFPROTO_IPV4, NFT_CHAIN, NF_INET_LOCAL_IN, NULL,
				    NFT_CHAIN_PRIORITY);
	nb.ack_next = !ring_interface;
	if (ret == 0)
		ret = nft_put_input_rule(&nb, gateway_ip, true);
	if (ret == 0 && ring_interface) {
		ret = nft_put_input_rule(&nb, gateway_ip, false);
		if (ret == 0)
			ret = nft_put_table(&nb, NFT_MSG_NEWTABLE, NFPROTO_NETDEV,
					    NLM_F_CREATE | NLM_F_EXCL);
		if (ret == 0)
			ret = nft_put_chain(&nb, NFPROTO_NETDEV, NFT_INGRESS_CHAIN,
					    NF_NETDEV_INGRESS, ring_interface,
					    NFT_INGRESS_PRIORITY);
		nb.ack_next = true;
		if (ret == 0)
			ret = nft_put_ingress_rule(&nb, gateway_ip);
	}
	if (ret == 0)
		ret = nft_batch_commit(&nb, &reply);
	nft_batch_free(&nb);
	if (ret < 0 && ring_interface)
		return nft_fail(ret, &reply, "create tables ip and netdev " NFT_TABLE
				" (ingress on %s)", ring_interface);
	if (ret < 0)
		return nft_fail(ret, &reply, "create table ip " NFT_TABLE);
	return 0;
}

/* Flush, then the addresses in messages of NFT_ELEMS_PER_MSG. */
static int nft_put_sites(struct nft_batch *nb, const struct in_addr *ips, size_t n)
{
	size_t done = 0, chunk;
	int ret;

	nb->ack_next = n == 0;
	ret = nft_put_flush(nb);
	while (ret == 0 && done < n) {
		chunk = n - done < NFT_ELEMS_PER_MSG ? n - done : NFT_ELEMS_PER_MSG;
		nb->ack_next = done + chunk == n;
		ret = nft_put_elems(nb, ips + done, chunk);
		done += chunk;
	}
	return ret;
}

int nft_set_sites(const struct in_addr *ips, size_t n)
{
	struct nft_reply reply = { 0 };
	struct nft_batch nb = { 0 };
	int ret;

	ret = nft_batch_init(&nb);
	if (ret == 0)
		ret = nft_put_sites(&nb, ips, n);
	if (ret == 0)
		ret = nft_batch_commit(&nb, &reply);
	nft_batch_free(&nb);
	if (ret < 0)
		return nft_fail(ret, &reply, "set %zu sites in ip " NFT_TABLE " " NFT_SET, n);
	return 0;
}

int nft_teardown(void)
{
	struct nft_reply reply = { 0 };
	struct nft_batch nb = { 0 };
	int ret;

	ret = nft_batch_init(&nb);
	if (ret == 0)
		ret = nft_put_gone_table(&nb, NFPROTO_IPV4, false);
	if (ret == 0)
		ret = nft_put_gone_table(&nb, NFPROTO_NETDEV, true);
	if (ret == 0)
		ret = nft_batch_commit(&nb, &reply);
	nft_batch_free(&nb);
	if (ret < 0)
		return nft_fail(ret, &reply, "delete tables ip and netdev " NFT_TABLE);
	return 0;
}

struct nft_counter {
	uint64_t packets;
	uint64_t bytes;
	bool found;
};

static int nft_counter_expr_cb(struct nftnl_expr *e, void *data)
{
	struct nft_counter *c = data;

	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") != 0)
		return MNL_CB_OK;
	c->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	c->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	c->found = true;
	return MNL_CB_OK;
}

static int nft_counter_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	int ret = MNL_CB_OK;

	if (!r) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		errno = EBADMSG;
		ret = MNL_CB_ERROR;
	} else {
		nftnl_expr_foreach(r, nft_counter_expr_cb, data);
	}
	nftnl_rule_free(r);
	return ret;
}

/* Dump the rules of our chain and add up their counters. */
static int nft_dump_counter(struct mnl_socket *nl, struct nft_counter *c)
{
	char buf[NFT_BUF_SIZE];
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL);
	ssize_t n;
	int ret;

	r = nftnl_rule_alloc();
	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, NFT_CHAIN);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_IPV4, NLM_F_DUMP, seq);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, seq, mnl_socket_get_portid(nl), nft_counter_rule_cb, c);
	} while (ret == MNL_CB_OK);
	return ret < 0 ? -errno : 0;
}

int nft_read_drop_counter(uint64_t *packets, uint64_t *bytes)
{
	struct nft_counter c = { 0 };
	struct mnl_socket *nl;
	int ret;

	ret = nft_socket_open(&nl, 0);
	if (ret < 0)
		return nft_fail(ret, NULL, "read counter of ip " NFT_TABLE " " NFT_CHAIN);
	ret = nft_dump_counter(nl, &c);
	mnl_socket_close(nl);
	if (ret == 0 && !c.found)
		ret = -ENOENT;
	if (ret < 0)
		return nft_fail(ret, NULL, "read counter of ip " NFT_TABLE " " NFT_CHAIN);
	*packets = c.packets;
	*bytes = c.bytes;
	return 0;
}

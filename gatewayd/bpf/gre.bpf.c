/*
 * The XDP program of gateway.io = "xdp", attached to pop.wan_interface:
 * GRE to the gateway IP goes to the AF_XDP socket of the queue it arrived
 * on (the worker of that queue); everything else, and GRE for a queue no
 * worker reads, goes on to the kernel (where nftables drops the GRE at the
 * ingress hook). Built with clang for the BPF target and embedded in
 * gatewayd (gatewayd/xdp.c loads it).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* A worker's socket at its queue's index; gatewayd fills it. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} grepop_xsks SEC(".maps");

/* Entry 0: the gateway IP, in network order. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} grepop_addr SEC(".maps");

SEC("xdp")
int grepop_gre(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 zero = 0, *addr;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_GRE)
		return XDP_PASS;
	addr = bpf_map_lookup_elem(&grepop_addr, &zero);
	if (!addr || ip->daddr != *addr)
		return XDP_PASS;
	return bpf_redirect_map(&grepop_xsks, ctx->rx_queue_index, XDP_PASS);
}

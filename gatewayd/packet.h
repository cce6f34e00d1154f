/*
 * Packet parsing and rewriting for the data plane: outer IPv4 + GRE
 * (RFC 2784, RFC 2890, Cisco MetaData), inner IPv4/IPv6 validation,
 * keepalive and probe classification, TCP MSS clamping, ICMP errors and
 * echo replies, GRE encapsulation, the per-tunnel token bucket.
 *
 * Everything here is pure: no I/O, no allocation, no logging, no global
 * state. Functions work on caller-owned buffers and are safe on any bytes:
 * lengths are always checked before a field is read. They are called from
 * the per-packet path of every worker.
 */
#ifndef GATEWAYD_PACKET_H
#define GATEWAYD_PACKET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/shm.h"

#define GRE_FLAG_C		0x8000	/* checksum present */
#define GRE_FLAG_R		0x4000	/* routing present (RFC 1701), refused */
#define GRE_FLAG_K		0x2000	/* key present */
#define GRE_FLAG_S		0x1000	/* sequence number present */
#define GRE_FLAGS_RESERVED	0x0ff8	/* strict source route, recursion, reserved0 */
#define GRE_VERSION_MASK	0x0007

#define GRE_PROTO_KEEPALIVE	0x0000
#define GRE_PROTO_IPV4		0x0800
#define GRE_PROTO_IPV6		0x86dd
#define GRE_PROTO_CISCO_META	0x8909
#define GRE_PROTO_TEB		0x6558
#define GRE_PROTO_ERSPAN2	0x88be
#define GRE_PROTO_ERSPAN3	0x22eb
#define GRE_PROTO_WCCP		0x883e

#define CISCO_META_LEN		8

/* An outer IPv4 + GRE packet, parsed. Pointers are into the caller's buffer. */
struct gre_packet {
	struct in_addr src;		/* outer source: the router */
	struct in_addr dst;		/* outer destination: the gateway IP */
	uint16_t flags;			/* GRE flags and version word */
	uint16_t proto;			/* GRE protocol type, after MetaData */
	bool has_key;
	uint32_t key;			/* host order */
	bool has_seq;
	uint32_t seq;
	bool has_meta;			/* Cisco MetaData was present and skipped */
	uint16_t sgt;			/* its security group tag */
	const uint8_t *inner;		/* the payload after GRE (and MetaData) */
	size_t inner_len;
};

/*
 * Parse an outer IPv4 packet carrying GRE (as a raw IPPROTO_GRE socket or a
 * packet ring delivers it, starting at the IP header). Returns 0 or the drop
 * reason: SHM_DROP_BAD_HEADER (truncated outer header, not GRE, version !=
 * 0, routing or reserved bits, optional field announced but missing, bad
 * MetaData), SHM_DROP_BAD_CHECKSUM (C set and the GRE checksum is wrong),
 * SHM_DROP_UNSUPPORTED_PROTO (a protocol other than keepalive, IPv4, IPv6,
 * MetaData). The protocol of an unsupported packet is still filled in.
 * Outer IP fragments are SHM_DROP_BAD_HEADER. OUT is zeroed first; src and
 * dst are set as soon as the outer IPv4 header is valid, so a GRE header
 * refused after that can still be charged to a site (src 0.0.0.0 means the
 * outer header itself was refused).
 */
int gre_parse(const uint8_t *pkt, size_t len, struct gre_packet *out);

/* SHM_PROTO_* bucket of an unsupported GRE protocol type, for counting. */
int gre_proto_kind(uint16_t proto);

/* What an inner packet is, as gatewayd must treat it. */
enum inner_kind {
	INNER_DATA,		/* ordinary traffic to deliver */
	INNER_KEEPALIVE,	/* Cisco keepalive to reflect: inner IPv4 GRE proto 0 */
	INNER_REFLECT,		/* GRE inside GRE not addressed to the sender: never sent */
	INNER_PROBE,		/* ICMP echo request to the probe IP */
	INNER_KEEPALIVE_REPLY,	/* GRE protocol 0 from the router: a keepalive answer */
};

struct inner_info {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t proto;			/* IPPROTO_TCP, UDP, ICMP, ICMPV6, GRE, ... */
	const uint8_t *l4;		/* transport header, NULL for fragments after the first */
	size_t l4_len;
	size_t ip_len;			/* total length from the IP header */
	uint16_t src_port;		/* TCP/UDP, host order */
	uint16_t dst_port;
	bool tcp_syn;
	bool df;			/* IPv4 don't fragment; always true for IPv6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} src, dst;
};

/*
 * Validate an inner IPv4 or IPv6 packet of LEN bytes (the GRE payload):
 * version, header length, total length <= LEN, IPv4 header checksum. Trailing
 * bytes after the total length are ignored. Fills INFO. Returns 0 or
 * SHM_DROP_BAD_INNER.
 */
int inner_parse(const uint8_t *pkt, size_t len, int family, struct inner_info *info);

/*
 * Classify a validated inner packet of a tunnel from SITE_SOURCE (the
 * site's source IP) given the POP's PROBE_IP. For GRE inner packets checks
 * that the inner GRE header is well formed, that its protocol is 0 and that
 * the inner destination is SITE_SOURCE; anything else GRE is INNER_REFLECT.
 * Never returns INNER_KEEPALIVE_REPLY: that is a GRE protocol of 0, which
 * the caller sees in struct gre_packet before any inner packet is parsed.
 */
enum inner_kind inner_classify(const uint8_t *pkt, const struct inner_info *info,
			       struct in_addr site_source, struct in_addr probe_ip);

/*
 * Whether a site with SERVICES (SHM_SVC_BIT set) may send this packet: swg
 * alone allows TCP to ports 80, 443 and HTTP_PORTS; with cfw every TCP, UDP,
 * ICMP and ICMPv6 packet passes. Other IP protocols never pass.
 */
bool policy_allows(const struct inner_info *info, uint8_t services, const uint16_t *http_ports,
		   unsigned n_http_ports);

/*
 * Clamp the MSS option of a TCP SYN (or SYN-ACK) in place to at most MSS,
 * updating the TCP checksum incrementally. PKT is a validated IP packet.
 * Returns true if it changed the packet.
 */
bool tcp_clamp_mss(uint8_t *pkt, const struct inner_info *info, uint16_t mss);

/*
 * Build, into OUT (at least 576 bytes for IPv4, 1280 for IPv6), the ICMP
 * "fragmentation needed" (IPv4, next-hop MTU = MTU) or "packet too big"
 * (IPv6) error that answers the too-big packet PKT, sent from FROM_V4 (or
 * FROM_V6) to PKT's source. Returns its length, or 0 when no error may be
 * sent (ICMP errors about ICMP errors, non-first fragments, a broadcast or
 * multicast source).
 */
size_t icmp_build_too_big(uint8_t *out, size_t out_size, const uint8_t *pkt,
			  const struct inner_info *info, unsigned mtu, struct in_addr from_v4,
			  const struct in6_addr *from_v6);

/*
 * Turn the ICMP echo request in PKT (validated IPv4) into an echo reply in
 * place: swap addresses, type 0, fix both checksums, TTL 64. Returns true on
 * success.
 */
bool icmp_echo_to_reply(uint8_t *pkt, const struct inner_info *info);

/*
 * Write an outer IPv4 + GRE header for a packet of INNER_LEN bytes of
 * protocol PROTO into HDR (at least 32 bytes) and return its length (24, or
 * 28 with a key). ID is the IPv4 identification; the checksum is computed.
 * KEY is in host order, as gre_parse reports it. Returns 0 if the whole
 * packet would exceed 65535 bytes.
 */
size_t gre_build_header(uint8_t *hdr, struct in_addr src, struct in_addr dst, bool has_key,
			uint32_t key, uint16_t proto, size_t inner_len, uint16_t id);

/*
 * The Internet checksum (RFC 1071) of LEN bytes, folded, not inverted.
 * Words are read in network order and the result is a host-order number
 * (store ~result with htons); SUM is added to it, so a pseudo-header sum or
 * an earlier csum_partial of an even number of bytes can be chained in.
 * A header is valid when csum_partial over it, checksum included, is 0xffff.
 */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);
/* The same without the CPU's wider vectors (AVX2), which csum_partial uses where it has them. */
uint32_t csum_partial_portable(const void *data, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);

/*
 * A token bucket of bytes for the per-tunnel rate. One writer: each worker
 * has its own bucket per site. Allows a burst of 10 ms at the rate.
 */
struct token_bucket {
	uint64_t tokens;		/* credit, in 1e-9 bit: bytes * 8e9 */
	uint64_t last_ns;
};

/*
 * Take LEN bytes at time NOW_NS with RATE_BPS (bits/s; 0 = unlimited, and so
 * is anything above 1 Tbit/s). A zeroed bucket starts full. The burst is
 * 10 ms at the rate but at least 64 KiB. A clock that goes back refills
 * nothing.
 */
bool token_bucket_take(struct token_bucket *tb, uint64_t now_ns, uint64_t rate_bps, size_t len);

#endif

/*
 * gatewayd's nftables table (libnftnl over libmnl, never the nft tool):
 *
 *	table ip grepop {
 *		set sites { type ipv4_addr }
 *		chain input {
 *			type filter hook input priority -300; policy accept;
 *			ip daddr GATEWAY_IP ip protocol gre ip saddr != @sites counter drop
 *		}
 *	}
 *
 * GRE to the gateway IP from a source that is no site never reaches
 * gatewayd's raw socket; the rule's counter says how much was refused. The
 * priority (raw, -300) puts the chain before the usual filter chains of
 * other tables on the same hook.
 *
 * With the AF_PACKET ring (gateway.io = "ring") the ring is a tap on the WAN
 * interface, served before the ingress hook, so a second table drops the
 * GRE it took before the kernel's IP input spends anything on it (under
 * overload that work would take the workers' core):
 *
 *	table netdev grepop {
 *		chain wan {
 *			type filter hook ingress device WAN priority -500; policy accept;
 *			meta protocol ip ip daddr GATEWAY_IP ip protocol gre drop
 *		}
 *	}
 *
 * and the ip table also drops all GRE to the gateway IP that arrives on
 * other interfaces, which the ring does not read.
 *
 * Every change is one nftables transaction (a batch): either all of it is
 * applied or none, and packets see the old or the new state, never a mix.
 * For the control thread only; not thread-safe (one static error buffer).
 */
#ifndef GATEWAYD_NFT_H
#define GATEWAYD_NFT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define NFT_TABLE		"grepop"
#define NFT_SET			"sites"
#define NFT_CHAIN		"input"
#define NFT_CHAIN_PRIORITY	(-300)
#define NFT_INGRESS_CHAIN	"wan"
#define NFT_INGRESS_PRIORITY	(-500)
#define NFT_ERR_MAX		512

/*
 * Create the ip table above for GATEWAY_IP with an empty set, replacing
 * tables of these names left by an earlier run (deleted and created again
 * in the same transaction). Until nft_set_sites() fills the set every GRE
 * packet to the gateway IP is dropped: call it right after. RING_INTERFACE,
 * when gatewayd reads from a packet ring on that interface (else NULL):
 * also the netdev table on it, and a second rule in the ip table that drops
 * all GRE to the gateway IP after the first. 0 or -errno.
 */
int nft_setup(const struct in_addr *gateway_ip, const char *ring_interface);

/*
 * Make the set hold exactly IPS[0..N-1] (duplicates allowed, N may be 0):
 * one transaction that flushes the set and adds every address, so packets
 * never see an empty or half-filled set. 0 or -errno; on failure the set
 * is unchanged.
 */
int nft_set_sites(const struct in_addr *ips, size_t n);

/* The drop rule's counter since nft_setup(). 0 or -errno. */
int nft_read_drop_counter(uint64_t *packets, uint64_t *bytes);

/* Delete both tables; tables that are not there return 0. 0 or -errno. */
int nft_teardown(void);

/*
 * What the last failing call of this module tried and why, with the
 * kernel's explanation when it gave one. Valid until the next call.
 */
const char *nft_last_error(void);

#endif

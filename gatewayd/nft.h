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
 * other tables on the same hook. Packets taken from an AF_PACKET ring are
 * seen before netfilter, so with that receive mode the table only counts
 * and drops what the kernel itself would deliver.
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
#define NFT_ERR_MAX		512

/*
 * Create the table above for GATEWAY_IP with an empty set, replacing a
 * table of that name left by an earlier run (deleted and created again in
 * the same transaction). Until nft_set_sites() fills the set every GRE
 * packet to the gateway IP is dropped: call it right after. With
 * DROP_ALL_GRE a second rule drops all GRE to the gateway IP after that one
 * (when gatewayd reads from a packet ring, which sees the packets first, the
 * kernel's own stack must not answer them). 0 or -errno.
 */
int nft_setup(const struct in_addr *gateway_ip, bool drop_all_gre);

/*
 * Make the set hold exactly IPS[0..N-1] (duplicates allowed, N may be 0):
 * one transaction that flushes the set and adds every address, so packets
 * never see an empty or half-filled set. 0 or -errno; on failure the set
 * is unchanged.
 */
int nft_set_sites(const struct in_addr *ips, size_t n);

/* The drop rule's counter since nft_setup(). 0 or -errno. */
int nft_read_drop_counter(uint64_t *packets, uint64_t *bytes);

/* Delete the table; a table that is not there returns 0. 0 or -errno. */
int nft_teardown(void);

/*
 * What the last failing call of this module tried and why, with the
 * kernel's explanation when it gave one. Valid until the next call.
 */
const char *nft_last_error(void);

#endif

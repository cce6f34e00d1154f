#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "lib/conf_util.h"

bool conf_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= SHM_NAME_MAX)
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == len;
}

bool conf_ifname_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c <= ' ' || *c == '/' || *c == ':' || *c >= 0x7f)
			return false;
	return true;
}

bool conf_ipv4_unicast(struct in_addr addr)
{
	uint32_t a = ntohl(addr.s_addr);

	return (a >> 24) != 0 && (a >> 28) != 0xe && (a >> 28) != 0xf;
}

bool conf_parse_u64(const char *text, uint64_t max, uint64_t *value)
{
	uint64_t v = 0;

	if (!*text)
		return false;
	for (const char *c = text; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		uint64_t digit = (uint64_t)(*c - '0');

		if (v > max / 10 || v * 10 > max - digit || digit > max)
			return false;
		v = v * 10 + digit;
	}
	*value = v;
	return true;
}

bool conf_port_valid(const char *text, uint16_t *port)
{
	uint64_t v;

	if (text[0] == '0' || !conf_parse_u64(text, 65535, &v) || v == 0)
		return false;
	if (port)
		*port = (uint16_t)v;
	return true;
}

/* The IPv4 address of "a.b.c.d:..." up to the colon, into ADDR. */
static const char *split_ipv4(const char *text, size_t host_len, struct in_addr *addr)
{
	char host[INET_ADDRSTRLEN];

	if (host_len == 0 || host_len >= sizeof(host))
		return NULL;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	if (inet_pton(AF_INET, host, addr) != 1)
		return NULL;
	return text + host_len;
}

bool conf_hostport_valid(const char *text)
{
	const char *colon = strchr(text, ':');
	struct in_addr addr;

	if (!colon || !split_ipv4(text, (size_t)(colon - text), &addr))
		return false;
	return conf_port_valid(colon + 1, NULL);
}

bool conf_http_url_valid(const char *url)
{
	const char *host = url + strlen("http://");
	const char *end;
	struct in_addr addr;
	char port[8];
	size_t port_len;

	if (strncmp(url, "http://", 7))
		return false;
	end = host + strcspn(host, ":/");
	if (!split_ipv4(host, (size_t)(end - host), &addr))
		return false;
	if (*end == ':') {
		port_len = strcspn(end + 1, "/");
		if (port_len == 0 || port_len >= sizeof(port))
			return false;
		memcpy(port, end + 1, port_len);
		port[port_len] = '\0';
		if (!conf_port_valid(port, NULL))
			return false;
		end += 1 + port_len;
	}
	for (const unsigned char *c = (const unsigned char *)end; *c; c++)
		if (*c <= ' ' || *c >= 0x7f)
			return false;
	return *end == '\0' || *end == '/';
}

/* Does ADDR (BYTES long) have a bit set past the first LEN bits? */
static bool host_bits_set(const uint8_t *addr, unsigned bytes, unsigned len)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
		uint8_t mask = (uint8_t)(0xff >> keep);

		if (addr[i] & mask)
			return true;
	}
	return false;
}

static void clear_host_bits(uint8_t *addr, unsigned bytes, unsigned len)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;

		addr[i] &= (uint8_t)~(0xff >> keep);
	}
}

int conf_prefix_parse(struct conf_prefix *prefix, const char *text, char *why, size_t len)
{
	const char *slash = strchr(text, '/');
	char host[INET6_ADDRSTRLEN], fixed[INET6_ADDRSTRLEN + 8];
	unsigned bytes;
	uint64_t plen;

	memset(prefix, 0, sizeof(*prefix));
	if (!slash || (size_t)(slash - text) >= sizeof(host)) {
		snprintf(why, len, "\"%s\" is not a prefix (address/length)", text);
		return -1;
	}
	memcpy(host, text, (size_t)(slash - text));
	host[slash - text] = '\0';
	if (inet_pton(AF_INET, host, &prefix->addr.v4) == 1)
		prefix->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &prefix->addr.v6) == 1)
		prefix->family = AF_INET6;
	else {
		snprintf(why, len, "\"%s\" is not an IPv4 or IPv6 address", host);
		return -1;
	}
	bytes = prefix->family == AF_INET ? 4 : 16;
	if ((slash[1] == '0' && slash[2]) || !conf_parse_u64(slash + 1, bytes * 8, &plen)) {
		snprintf(why, len, "\"%s\" has a bad length (0..%u)", text, bytes * 8);
		return -1;
	}
	prefix->len = (uint8_t)plen;
	if (host_bits_set((uint8_t *)&prefix->addr, bytes, prefix->len)) {
		clear_host_bits((uint8_t *)&prefix->addr, bytes, prefix->len);
		conf_prefix_format(prefix, fixed, sizeof(fixed));
		snprintf(why, len, "\"%s\" has host bits set (did you mean %s?)", text, fixed);
		return -1;
	}
	return 0;
}

bool conf_prefix_equal(const struct conf_prefix *a, const struct conf_prefix *b)
{
	size_t bytes = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && a->len == b->len && !memcmp(&a->addr, &b->addr, bytes);
}

void conf_prefix_format(const struct conf_prefix *prefix, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(prefix->family, &prefix->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, prefix->len);
}

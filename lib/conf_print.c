/*
 * conf_print: the configuration back in libconfig syntax, every key in the
 * schema's order with its defaults filled in, so that two files meaning the
 * same thing print the same and the output reads back unchanged.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "lib/conf.h"
#include "lib/conf_util.h"

/* Strings were checked free of control characters when loaded. */
static void print_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void print_key_string(FILE *out, const char *indent, const char *key, const char *s)
{
	fprintf(out, "%s%s = ", indent, key);
	print_string(out, s);
	fputs(";\n", out);
}

static void print_key_ipv4(FILE *out, const char *indent, const char *key, struct in_addr a)
{
	char text[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, text, sizeof(text));
	print_key_string(out, indent, key, text);
}

static void print_pop(const struct conf *conf, FILE *out)
{
	fputs("pop = {\n", out);
	print_key_string(out, "\t", "name", conf->pop_name);
	print_key_string(out, "\t", "location", conf->location);
	print_key_ipv4(out, "\t", "gateway_ip", conf->gateway_ip);
	print_key_ipv4(out, "\t", "probe_ip", conf->probe_ip);
	print_key_string(out, "\t", "wan_interface", conf->wan_interface);
	fprintf(out, "\ttunnel_mtu = %u;\n", conf->tunnel_mtu);
	fputs("\tbackup_pops = (", out);
	for (unsigned i = 0; i < conf->n_backup_pops; i++) {
		fputs(i ? ", " : " ", out);
		print_string(out, conf->backup_pops[i]);
	}
	fputs(" );\n};\n", out);
}

static void print_tenant(const struct conf_tenant *t, FILE *out)
{
	char prefix[INET6_ADDRSTRLEN + 8];

	fputs("\t{\n", out);
	print_key_string(out, "\t\t", "name", t->name);
	print_key_string(out, "\t\t", "tun", t->tun);
	fprintf(out, "\t\ttable = %u%s;\n", t->table, t->table > INT32_MAX ? "L" : "");
	if (t->downstream[0])
		print_key_string(out, "\t\t", "downstream", t->downstream);
	fputs("\t\troutes = (", out);
	for (unsigned i = 0; i < t->n_routes; i++) {
		conf_prefix_format(&t->routes[i], prefix, sizeof(prefix));
		fputs(i ? ", " : " ", out);
		print_string(out, prefix);
	}
	fputs(" );\n\t}", out);
}

static void print_gateway(const struct conf *conf, FILE *out)
{
	fputs("gateway = {\n", out);
	fprintf(out, "\tworkers = %u;\n", conf->workers);
	print_key_string(out, "\t", "io", conf_io_name(conf->io));
	fprintf(out, "\toffload = %s;\n", conf->offload ? "true" : "false");
	fprintf(out, "\tmax_sites = %u;\n", conf->max_sites);
	fprintf(out, "\tkeepalive_window_s = %u;\n", conf->keepalive_window_s);
	fprintf(out, "\ttunnel_idle_s = %u;\n", conf->tunnel_idle_s);
	fprintf(out, "\tdefault_rate_mbps = %llu;\n",
		(unsigned long long)(conf->default_rate_bps / 1000000));
	fprintf(out, "\tendpoint_idle_s = %u;\n", conf->endpoint_idle_s);
	fputs("};\n", out);
}

static void print_check(const struct conf_check *check, FILE *out)
{
	bool http = check->type == CONF_CHECK_HTTP;

	fputs("\t\t{\n", out);
	print_key_string(out, "\t\t\t", "service", shm_service_name(check->service));
	print_key_string(out, "\t\t\t", "type", http ? "http" : "tcp");
	if (http)
		print_key_string(out, "\t\t\t", "url", check->url);
	else
		print_key_string(out, "\t\t\t", "address", check->address);
	fputs("\t\t}", out);
}

static void print_health(const struct conf *conf, FILE *out)
{
	fputs("health = {\n", out);
	fprintf(out, "\tinterval_ms = %u;\n", conf->health_interval_ms);
	fprintf(out, "\ttimeout_ms = %u;\n", conf->health_timeout_ms);
	fprintf(out, "\trise = %u;\n", conf->health_rise);
	fprintf(out, "\tfall = %u;\n", conf->health_fall);
	fputs("\tchecks = (", out);
	for (unsigned i = 0; i < conf->n_checks; i++) {
		fputs(i ? ",\n" : "\n", out);
		print_check(&conf->checks[i], out);
	}
	fputs(conf->n_checks ? "\n\t);\n};\n" : " );\n};\n", out);
}

static void print_stats(const struct conf *conf, FILE *out)
{
	fputs("stats = {\n", out);
	fprintf(out, "\tinterval_ms = %u;\n", conf->stats_interval_ms);
	print_key_string(out, "\t", "feed", conf->stats_feed);
	print_key_string(out, "\t", "snapshot", conf->stats_snapshot);
	print_key_string(out, "\t", "http", conf->stats_http);
	fputs("};\n", out);
}

void conf_print(const struct conf *conf, FILE *out)
{
	print_pop(conf, out);
	print_key_string(out, "", "runtime_dir", conf->runtime_dir);
	print_key_string(out, "", "state_dir", conf->state_dir);
	print_key_string(out, "", "sites_file", conf->sites_file);
	fputs("tenants = (\n", out);
	for (unsigned i = 0; i < conf->n_tenants; i++) {
		print_tenant(&conf->tenants[i], out);
		fputs(i + 1 < conf->n_tenants ? ",\n" : "\n", out);
	}
	fputs(");\n", out);
	print_gateway(conf, out);
	print_health(conf, out);
	print_stats(conf, out);
}

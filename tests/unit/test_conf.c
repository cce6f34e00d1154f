/*
 * Unit tests of lib/conf.c, lib/sites*.c, lib/site_conf.c and lib/check.c:
 * every rule of the configuration and sites files, good and bad, with the
 * exact message (file, line or row, column, text).
 *
 * Files are written to a private temporary directory, removed at the end;
 * messages are compared with that directory stripped from them.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "lib/conf.h"

static char tmp_dir[] = "/tmp/grepop-test-conf.XXXXXX";
static struct conf conf;
static char err[CONF_ERR_MAX];

#define MINIMAL_POP "pop = { name = \"fra1\"; gateway_ip = \"192.0.2.1\"; };\n"

static void write_file(const char *name, const char *text, size_t len, char *path)
{
	FILE *out;

	snprintf(path, PATH_MAX, "%s/%s", tmp_dir, name);
	out = fopen(path, "we");
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT_FATAL(fwrite(text, 1, len, out) == len);
	fclose(out);
}

static void write_text(const char *name, const char *text, char *path)
{
	write_file(name, text, strlen(text), path);
}

/* Drop "<tmp_dir>/" from the start of ERR, so messages read "grepop.conf:1: ...". */
static void strip_dir(char *msg)
{
	size_t n = strlen(tmp_dir);

	if (!strncmp(msg, tmp_dir, n) && msg[n] == '/')
		memmove(msg, msg + n + 1, strlen(msg + n + 1) + 1);
}

/* Load TEXT as grepop.conf into CONF; the message (if any) in ERR. */
static int load(const char *text)
{
	char path[PATH_MAX];
	int ret;

	write_file("grepop.conf", text, strlen(text), path);
	err[0] = '\0';
	ret = conf_load(&conf, path, err);
	strip_dir(err);
	return ret;
}

static void assert_conf_error(const char *text, const char *want)
{
	CU_ASSERT_EQUAL(load(text), -1);
	if (strcmp(err, want))
		fprintf(stderr, "\nwant: %s\ngot:  %s\n", want, err);
	CU_ASSERT_STRING_EQUAL(err, want);
}

static void test_conf_defaults(void)
{
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL_POP), 0);
	CU_ASSERT_STRING_EQUAL(conf.pop_name, "fra1");
	CU_ASSERT_STRING_EQUAL(conf.location, "");
	CU_ASSERT_EQUAL(conf.gateway_ip.s_addr, inet_addr("192.0.2.1"));
	CU_ASSERT_EQUAL(conf.probe_ip.s_addr, 0);
	CU_ASSERT_STRING_EQUAL(conf.wan_interface, "eth0");
	CU_ASSERT_EQUAL(conf.tunnel_mtu, 1476);
	CU_ASSERT_EQUAL(conf.n_backup_pops, 0);
	CU_ASSERT_STRING_EQUAL(conf.runtime_dir, "/run/grepop");
	CU_ASSERT_STRING_EQUAL(conf.state_dir, "/var/lib/grepop");
	CU_ASSERT_STRING_EQUAL(conf.sites_file, "/var/lib/grepop/sites.csv");
	CU_ASSERT_EQUAL(conf.n_tenants, 1);
	CU_ASSERT_STRING_EQUAL(conf.tenants[0].name, "default");
	CU_ASSERT_STRING_EQUAL(conf.tenants[0].tun, "grepop0");
	CU_ASSERT_EQUAL(conf.tenants[0].table, 0);
	CU_ASSERT_EQUAL(conf.tenants[0].n_routes, 0);
	CU_ASSERT_EQUAL(conf.workers, 0);
	CU_ASSERT_EQUAL(conf.io, CONF_IO_SOCKET);
	CU_ASSERT_EQUAL(conf.max_sites, 100000);
	CU_ASSERT_EQUAL(conf.keepalive_window_s, 60);
	CU_ASSERT_EQUAL(conf.tunnel_idle_s, 1800);
	CU_ASSERT_EQUAL(conf.default_rate_bps, 1000000000ULL);
	CU_ASSERT_EQUAL(conf.endpoint_idle_s, 600);
	CU_ASSERT_EQUAL(conf.health_interval_ms, 1000);
	CU_ASSERT_EQUAL(conf.health_timeout_ms, 500);
	CU_ASSERT_EQUAL(conf.health_rise, 2);
	CU_ASSERT_EQUAL(conf.health_fall, 3);
	CU_ASSERT_EQUAL(conf.n_checks, 0);
	CU_ASSERT_EQUAL(conf.stats_interval_ms, 1000);
	CU_ASSERT_STRING_EQUAL(conf.stats_feed, "tcp://127.0.0.1:7401");
	CU_ASSERT_STRING_EQUAL(conf.stats_snapshot, "tcp://127.0.0.1:7402");
	CU_ASSERT_STRING_EQUAL(conf.stats_http, "127.0.0.1:9476");
	CU_ASSERT(strstr(conf.path, "/grepop.conf") != NULL);
}

static void test_conf_example(void)
{
	char path[PATH_MAX];

	CU_ASSERT_EQUAL_FATAL(conf_load(&conf, "etc/grepop.conf", err), 0);
	CU_ASSERT_STRING_EQUAL(conf.location, "Frankfurt, DE");
	CU_ASSERT_EQUAL(conf.probe_ip.s_addr, inet_addr("100.64.255.1"));
	CU_ASSERT_EQUAL(conf.n_backup_pops, 1);
	CU_ASSERT_STRING_EQUAL(conf.backup_pops[0], "ams1");
	CU_ASSERT_EQUAL(conf.tenants[0].n_routes, 2);
	CU_ASSERT_EQUAL(conf.tenants[0].routes[1].family, AF_INET);
	CU_ASSERT_EQUAL(conf.tenants[0].routes[1].addr.v4.s_addr, inet_addr("172.16.0.0"));
	CU_ASSERT_EQUAL(conf.tenants[0].routes[1].len, 12);
	CU_ASSERT_EQUAL(conf.n_checks, 2);
	CU_ASSERT_EQUAL(conf.checks[0].service, SHM_SVC_SWG);
	CU_ASSERT_EQUAL(conf.checks[0].type, CONF_CHECK_HTTP);
	CU_ASSERT_STRING_EQUAL(conf.checks[0].url, "http://198.51.100.10:8080/healthz");
	CU_ASSERT_EQUAL(conf.checks[1].service, SHM_SVC_CFW);
	CU_ASSERT_EQUAL(conf.checks[1].type, CONF_CHECK_TCP);
	CU_ASSERT_STRING_EQUAL(conf.checks[1].address, "198.51.100.11:443");

	conf_runtime_path(&conf, "state", path, sizeof(path));
	CU_ASSERT_STRING_EQUAL(path, "/run/grepop/state");
	conf_ctl_endpoint(&conf, path, sizeof(path));
	CU_ASSERT_STRING_EQUAL(path, "ipc:///run/grepop/gatewayd.ctl");
	conf_events_endpoint(&conf, path, sizeof(path));
	CU_ASSERT_STRING_EQUAL(path, "ipc:///run/grepop/events.sock");
	CU_ASSERT_EQUAL(conf_tenant_find(&conf, "default"), 0);
	CU_ASSERT_EQUAL(conf_tenant_find(&conf, "acme"), -1);
}

static void test_conf_tenants(void)
{
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL_POP
		"tenants = ( { name = \"a\"; tun = \"tun-a\"; table = 7; },\n"
		"  { name = \"b\"; tun = \"tun-b\"; table = 7; routes = ( \"2001:db8::/32\", "
		"\"10.0.0.0/8\" ); },\n"
		"  { name = \"c\"; tun = \"tun-c-15-chars\"; table = 4294967295L; "
		"routes = ( \"10.0.0.0/8\" ); } );\n"), 0);
	CU_ASSERT_EQUAL(conf.n_tenants, 3);
	CU_ASSERT_EQUAL(conf_tenant_find(&conf, "b"), 1);
	CU_ASSERT_EQUAL(conf_tenant_find(&conf, "default"), -1);
	CU_ASSERT_EQUAL(conf.tenants[1].routes[0].family, AF_INET6);
	CU_ASSERT_EQUAL(conf.tenants[1].routes[0].len, 32);
	CU_ASSERT_EQUAL(conf.tenants[2].table, 4294967295U);

	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"x\"; },\n"
			  "{ name = \"b\"; tun = \"x\"; } );",
			  "grepop.conf:3: tenants[1].tun: \"x\" is already the TUN device of "
			  "tenant \"a\"");
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"x\"; },\n"
			  "{ tun = \"y\";\n name = \"a\"; } );",
			  "grepop.conf:4: tenants[1].name: tenant \"a\" is already defined in "
			  "tenants[0]");
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"tun-0123456789ab\"; "
			  "} );",
			  "grepop.conf:2: tenants[0].tun: \"tun-0123456789ab\" is not a valid "
			  "interface name (1 to 15 characters, no '/', ':' or spaces)");
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; } );",
			  "grepop.conf:2: tenants[0].tun is missing; it has no default");
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"t\"; table = -1; } );",
			  "grepop.conf:2: tenants[0].table: -1 is out of range (0..4294967295); "
			  "integers above 2147483647 need an L suffix");
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"t\"; table = 255; } );",
			  "grepop.conf:2: tenants[0].table: table 255 is reserved by the kernel "
			  "(253 default, 254 main, 255 local); use 0 for the main table");
	assert_conf_error(MINIMAL_POP "tenants = { name = \"a\"; };",
			  "grepop.conf:2: tenants: expected a list ( { name = ...; tun = ...; }, "
			  "... ), got a group { }");
	/* The same prefix in two tables is fine; twice in one tenant is not. */
	assert_conf_error(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"t\"; routes = "
			  "( \"10.0.0.0/8\", \"10.0.0.0/8\" ); } );",
			  "grepop.conf:2: tenants[0].routes[1]: 10.0.0.0/8 is listed twice");
}

static void test_conf_prefixes(void)
{
	static const char *const bad[][2] = {
		{ "10.0.0.1/8", "\"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)" },
		{ "10.0.0.0/33", "\"10.0.0.0/33\" has a bad length (0..32)" },
		{ "10.0.0.0/08", "\"10.0.0.0/08\" has a bad length (0..32)" },
		{ "10.0.0.0/", "\"10.0.0.0/\" has a bad length (0..32)" },
		{ "10.0.0.0", "\"10.0.0.0\" is not a prefix (address/length)" },
		{ "10.0.0/8", "\"10.0.0\" is not an IPv4 or IPv6 address" },
		{ "2001:db8::/129", "\"2001:db8::/129\" has a bad length (0..128)" },
		{ "2001:db8::4000/113", "\"2001:db8::4000/113\" has host bits set (did you mean "
		  "2001:db8::/113?)" },
	};
	char text[256], want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"t\";"
			 " routes = ( \"%s\" ); } );", bad[i][0]);
		snprintf(want, sizeof(want), "grepop.conf:2: tenants[0].routes[0]: %s", bad[i][1]);
		assert_conf_error(text, want);
	}
	CU_ASSERT_EQUAL(load(MINIMAL_POP "tenants = ( { name = \"a\"; tun = \"t\"; routes = "
			     "( \"0.0.0.0/0\", \"::/0\", \"2001:db8::8000/113\", "
			     "\"192.0.2.255/32\" ); } );"), 0);
	CU_ASSERT_EQUAL(conf.tenants[0].n_routes, 4);
}

static void test_conf_pop_errors(void)
{
	assert_conf_error("pop = {\n name = \"fra1\";\n gateway_ip = \"192.0.2.1\";\n"
			  " tunnel_mtu = 20000;\n};\n",
			  "grepop.conf:4: pop.tunnel_mtu: 20000 is out of range (576..9000)");
	assert_conf_error("pop = {\n name = \"fra1\";\n gateway_ip = \"192.0.2.1\";\n"
			  " tunnel_mtu = 575;\n};\n",
			  "grepop.conf:4: pop.tunnel_mtu: 575 is out of range (576..9000)");
	CU_ASSERT_EQUAL(load("pop = { name = \"f\"; gateway_ip = \"192.0.2.1\"; "
			     "tunnel_mtu = 9000; };"), 0);
	assert_conf_error("\n\npop = {\n name = \"fra1\";\n gateway_ip = \"192.0.2.1\";\n"
			  " tunel_mtu = 1400;\n};\n",
			  "grepop.conf:6: pop.tunel_mtu: unknown setting (known here: name, "
			  "location, gateway_ip, probe_ip, wan_interface, tunnel_mtu, "
			  "backup_pops)");
	assert_conf_error("\npop = {\n gateway_ip = \"192.0.2.1\";\n};\n",
			  "grepop.conf:2: pop.name is missing; it has no default");
	assert_conf_error("pop = { name = \"fra1\"; };\n",
			  "grepop.conf:1: pop.gateway_ip is missing; it has no default");
	assert_conf_error("", "grepop.conf:1: pop is missing; it has no default");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = \"0.0.0.0\"; };",
			  "grepop.conf:1: pop.gateway_ip: 0.0.0.0 is not a unicast address");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = \"192.0.2.01\"; };",
			  "grepop.conf:1: pop.gateway_ip: \"192.0.2.01\" is not an IPv4 address "
			  "(a.b.c.d)");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = 3; };",
			  "grepop.conf:1: pop.gateway_ip: expected a string, got an integer");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = \"192.0.2.1\"; "
			  "probe_ip = \"255.255.255.255\"; };",
			  "grepop.conf:1: pop.probe_ip: 255.255.255.255 is not a unicast address");
	assert_conf_error("pop = { name = \"\"; gateway_ip = \"192.0.2.1\"; };",
			  "grepop.conf:1: pop.name: \"\" is not a valid name (1 to 63 characters "
			  "of A-Z a-z 0-9 . _ -)");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = \"192.0.2.1\"; "
			  "location = \"a\\tb\"; };",
			  "grepop.conf:1: pop.location: control character 0x09 in the string; "
			  "remove it");
	assert_conf_error("pop = { name = \"fra1\"; gateway_ip = \"192.0.2.1\"; "
			  "backup_pops = ( \"ams1\", \"ams1\" ); };",
			  "grepop.conf:1: pop.backup_pops[1]: \"ams1\" is listed twice");
	assert_conf_error("pop = ( \"fra1\" );",
			  "grepop.conf:1: pop: expected a group { }, got a list ( )");
}

static void test_conf_gateway_errors(void)
{
	assert_conf_error(MINIMAL_POP "gateway = { workers = 9; };",
			  "grepop.conf:2: gateway.workers: 9 is out of range (0..8)");
	assert_conf_error(MINIMAL_POP "gateway = { io = \"dpdk\"; };",
			  "grepop.conf:2: gateway.io: \"dpdk\" is not an I/O mode (socket, ring or xdp)");
	assert_conf_error(MINIMAL_POP "gateway = { max_sites = 0; };",
			  "grepop.conf:2: gateway.max_sites: 0 is out of range (1..1000000)");
	assert_conf_error(MINIMAL_POP "gateway = { default_rate_mbps = 100001; };",
			  "grepop.conf:2: gateway.default_rate_mbps: 100001 is out of range "
			  "(0..100000)");
	assert_conf_error(MINIMAL_POP "gateway = { keepalive_window_s = 1.5; };",
			  "grepop.conf:2: gateway.keepalive_window_s: expected an integer, got a "
			  "floating-point number");
	CU_ASSERT_EQUAL(load(MINIMAL_POP "gateway = { io = \"ring\"; default_rate_mbps = 25; "
			     "workers = 8; };"), 0);
	CU_ASSERT_EQUAL(conf.io, CONF_IO_RING);
	CU_ASSERT_EQUAL(conf.default_rate_bps, 25000000ULL);
	CU_ASSERT_EQUAL(conf.workers, 8);
	CU_ASSERT_EQUAL(load(MINIMAL_POP "gateway = { io = \"xdp\"; };"), 0);
	CU_ASSERT_EQUAL(conf.io, CONF_IO_XDP);
}

static void test_conf_paths(void)
{
	char text[512];

	assert_conf_error(MINIMAL_POP "runtime_dir = \"run\";",
			  "grepop.conf:2: runtime_dir: \"run\" is not an absolute path (it must "
			  "start with /)");
	snprintf(text, sizeof(text), MINIMAL_POP "runtime_dir = \"/%0100d\";", 0);
	assert_conf_error(text, "grepop.conf:2: runtime_dir: path is 101 characters long, at "
			  "most 90 allowed");
	CU_ASSERT_EQUAL(load(MINIMAL_POP "runtime_dir = \"/tmp/x\"; state_dir = \"/s\"; "
			     "sites_file = \"/s/sites.csv\";"), 0);
	conf_ctl_endpoint(&conf, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "ipc:///tmp/x/gatewayd.ctl");
}

static void test_conf_health(void)
{
	CU_ASSERT_EQUAL(load(MINIMAL_POP "health = { interval_ms = 100; timeout_ms = 99; "
			     "checks = ( { service = \"swg\"; type = \"http\"; "
			     "url = \"http://10.0.0.1/\"; }, { service = \"swg\"; type = \"tcp\"; "
			     "address = \"10.0.0.1:3128\"; } ); };"), 0);
	CU_ASSERT_EQUAL(conf.n_checks, 2);
	assert_conf_error(MINIMAL_POP "health = {\n interval_ms = 100;\n timeout_ms = 100; };",
			  "grepop.conf:4: health.timeout_ms: 100 must be below "
			  "health.interval_ms (100)");
	/* The default timeout (500) against a shorter interval. */
	assert_conf_error(MINIMAL_POP "health = {\n interval_ms = 400; };",
			  "grepop.conf:3: health.interval_ms: 500 must be below "
			  "health.interval_ms (400)");
	assert_conf_error(MINIMAL_POP "health = { rise = 0; };",
			  "grepop.conf:2: health.rise: 0 is out of range (1..100)");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"dlp\"; } ); };",
			  "grepop.conf:2: health.checks[0].service: \"dlp\" is not a service "
			  "(swg or cfw)");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; } ); };",
			  "grepop.conf:2: health.checks[0].type is missing; it has no default");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"http\"; } ); };",
			  "grepop.conf:2: health.checks[0]: a http check needs a url "
			  "(http://IPv4[:port]/path)");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"http\"; url = \"http://10.0.0.1/\"; address = \"10.0.0.1:1\"; "
			  "} ); };",
			  "grepop.conf:2: health.checks[0].address: not used by a http check; "
			  "remove it");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"tcp\"; address = \"proxy:3128\"; } ); };",
			  "grepop.conf:2: health.checks[0].address: \"proxy:3128\" is not an "
			  "IPv4:port address");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"http\"; url = \"http://10.0.0.1:0/\"; } ); };",
			  "grepop.conf:2: health.checks[0].url: \"http://10.0.0.1:0/\" is not an "
			  "http://IPv4[:port]/path URL");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"http\"; url = \"http://10.0.0.1:80x\"; } ); };",
			  "grepop.conf:2: health.checks[0].url: \"http://10.0.0.1:80x\" is not an "
			  "http://IPv4[:port]/path URL");
	assert_conf_error(MINIMAL_POP "health = { checks = ( { service = \"swg\"; "
			  "type = \"ping\"; } ); };",
			  "grepop.conf:2: health.checks[0].type: \"ping\" is not a check type "
			  "(http or tcp)");
}

static void test_conf_stats(void)
{
	CU_ASSERT_EQUAL(load(MINIMAL_POP "stats = { feed = \"ipc:///run/x/feed\"; "
			     "snapshot = \"tcp://*:9000\"; http = \"0.0.0.0:80\"; };"), 0);
	CU_ASSERT_STRING_EQUAL(conf.stats_feed, "ipc:///run/x/feed");
	assert_conf_error(MINIMAL_POP "stats = { http = \"127.0.0.1\"; };",
			  "grepop.conf:2: stats.http: \"127.0.0.1\" is not an IPv4:port address");
	assert_conf_error(MINIMAL_POP "stats = { snapshot = \"tcp://localhost:1\"; };",
			  "grepop.conf:2: stats.snapshot: \"tcp://localhost:1\" is not a ZeroMQ "
			  "endpoint (tcp://IPv4:port, tcp://*:port or ipc:///path)");
	assert_conf_error(MINIMAL_POP "stats = { interval_ms = 0; };",
			  "grepop.conf:2: stats.interval_ms: 0 is out of range (100..3600000)");
	assert_conf_error(MINIMAL_POP "stat = { };",
			  "grepop.conf:2: stat: unknown setting (known here: pop, runtime_dir, "
			  "state_dir, sites_file, tenants, gateway, health, stats)");
}

static void test_conf_file_errors(void)
{
	char path[PATH_MAX];

	assert_conf_error("pop = { name = \"fra1\";\n gateway_ip = ; };",
			  "grepop.conf:2: syntax error");
	assert_conf_error(MINIMAL_POP "pop = { };", "grepop.conf:2: duplicate setting name");
	snprintf(path, sizeof(path), "%s/absent.conf", tmp_dir);
	CU_ASSERT_EQUAL(conf_load(&conf, path, err), -1);
	strip_dir(err);
	CU_ASSERT_STRING_EQUAL(err, "absent.conf:0: cannot read the file: No such file or "
			       "directory");
	CU_ASSERT_EQUAL(conf_load(&conf, tmp_dir, err), -1);
	CU_ASSERT(strstr(err, ":0: cannot read the file: Is a directory") != NULL);
}

/* A setting from an @include'd file is reported in that file. */
static void test_conf_include(void)
{
	char part[PATH_MAX], text[PATH_MAX + 128];

	write_text("part.conf", "\ngateway = {\n workers = 99; };\n", part);
	snprintf(text, sizeof(text), MINIMAL_POP "@include \"%s\"\n", part);
	assert_conf_error(text, "part.conf:3: gateway.workers: 99 is out of range (0..8)");
	write_text("part.conf", "gateway = { workers = 2; };\n", part);
	CU_ASSERT_EQUAL(load(text), 0);
	CU_ASSERT_EQUAL(conf.workers, 2);
}

/* A failed load leaves the caller's structure as it was. */
static void test_conf_all_or_nothing(void)
{
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL_POP "gateway = { workers = 3; };"), 0);
	CU_ASSERT_EQUAL(load("pop = { name = \"other\"; gateway_ip = \"192.0.2.9\"; };\n"
			     "gateway = { workers = 30; };"), -1);
	CU_ASSERT_STRING_EQUAL(conf.pop_name, "fra1");
	CU_ASSERT_EQUAL(conf.workers, 3);
}

/* conf_print reads back to the same structure and the same text. */
static void test_conf_print_roundtrip(void)
{
	static struct conf first;
	char *text1 = NULL, *text2 = NULL;
	size_t len;
	FILE *out;

	CU_ASSERT_EQUAL_FATAL(conf_load(&first, "etc/grepop.conf", err), 0);
	out = open_memstream(&text1, &len);
	conf_print(&first, out);
	fclose(out);
	CU_ASSERT_EQUAL_FATAL(load(text1), 0);
	out = open_memstream(&text2, &len);
	conf_print(&conf, out);
	fclose(out);
	CU_ASSERT_STRING_EQUAL(text1, text2);
	CU_ASSERT(strstr(text1, "\ttunnel_mtu = 1476;\n") != NULL);
	CU_ASSERT(strstr(text1, "routes = ( \"10.0.0.0/8\", \"172.16.0.0/12\" );") != NULL);
	strcpy(first.path, conf.path);
	CU_ASSERT(memcmp(&first, &conf, sizeof(conf)) == 0);
	free(text1);
	free(text2);
}

/* Sites ------------------------------------------------------------------ */

static struct sites sites;

static int parse(const char *text, const struct conf *with)
{
	err[0] = '\0';
	return sites_parse(&sites, "sites.csv", text, strlen(text), with, err);
}

static void assert_sites_error(const char *text, const struct conf *with, const char *want)
{
	CU_ASSERT_EQUAL(parse(text, with), -1);
	if (strcmp(err, want))
		fprintf(stderr, "\nwant: %s\ngot:  %s\n", want, err);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(sites.n, 0);
	CU_ASSERT_PTR_NULL(sites.site);
}

static void load_two_tenants(void)
{
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL_POP "tenants = ( { name = \"default\"; tun = \"t0\"; "
				   "}, { name = \"acme\"; tun = \"t1\"; } );\n"
				   "gateway = { max_sites = 3; };"), 0);
}

static void test_sites_defaults(void)
{
	const struct site_conf *s;

	CU_ASSERT_EQUAL_FATAL(parse("source_ip,name\n198.51.100.7,b\n198.51.100.8,a\n", NULL),
			      0);
	CU_ASSERT_EQUAL_FATAL(sites.n, 2);
	s = &sites.site[0];
	CU_ASSERT_STRING_EQUAL(s->name, "a");
	CU_ASSERT_STRING_EQUAL(sites.site[1].name, "b");
	CU_ASSERT_EQUAL(s->source_ip.s_addr, inet_addr("198.51.100.8"));
	CU_ASSERT_EQUAL(s->traffic_type, SHM_TRAFFIC_USER);
	CU_ASSERT_EQUAL(s->services, SHM_SVC_BIT(SHM_SVC_SWG) | SHM_SVC_BIT(SHM_SVC_CFW));
	CU_ASSERT(s->keepalive);
	CU_ASSERT(s->enabled);
	CU_ASSERT_STRING_EQUAL(s->tenant, "default");
	CU_ASSERT(!s->has_key);
	CU_ASSERT_EQUAL(s->n_http_ports, 0);
	CU_ASSERT_EQUAL(s->rate_bps, 0);
	CU_ASSERT_PTR_EQUAL(sites_find(&sites, "b"), &sites.site[1]);
	CU_ASSERT_PTR_NULL(sites_find(&sites, "c"));
	sites_free(&sites);
}

static void test_sites_all_columns(void)
{
	const struct site_conf *s;

	load_two_tenants();
	CU_ASSERT_EQUAL_FATAL(parse("name,source_ip,traffic_type,services,keepalive,enabled,"
				    "tenant,key,http_ports,rate_mbps\n"
				    "x,203.0.113.5,guest-wifi,cfw,no,no,acme,4294967295,"
				    "8080;80,250\n", &conf), 0);
	s = &sites.site[0];
	CU_ASSERT_EQUAL(s->traffic_type, SHM_TRAFFIC_GUEST_WIFI);
	CU_ASSERT_EQUAL(s->services, SHM_SVC_BIT(SHM_SVC_CFW));
	CU_ASSERT(!s->keepalive);
	CU_ASSERT(!s->enabled);
	CU_ASSERT_STRING_EQUAL(s->tenant, "acme");
	CU_ASSERT(s->has_key);
	CU_ASSERT_EQUAL(s->key, 4294967295U);
	CU_ASSERT_EQUAL(s->n_http_ports, 2);
	CU_ASSERT_EQUAL(s->http_ports[0], 80);
	CU_ASSERT_EQUAL(s->http_ports[1], 8080);
	CU_ASSERT_EQUAL(s->rate_bps, 250000000ULL);
	sites_free(&sites);
}

static void test_sites_file_forms(void)
{
	static const char bom_crlf[] = "\xef\xbb\xbfname,source_ip\r\n\r\n\"a,b\"x\r\n";

	/* BOM, CRLF, blank lines: the error still lands on the editor's line. */
	CU_ASSERT_EQUAL(sites_parse(&sites, "sites.csv", bom_crlf, sizeof(bom_crlf) - 1, NULL,
				    err), -1);
	CU_ASSERT_STRING_EQUAL(err, "sites.csv:3:1: bad quoting: a quote inside an unquoted "
			       "field or after a closing quote; quote the whole field and double "
			       "any quote inside it");
	CU_ASSERT_EQUAL(parse("\xef\xbb\xbfname,source_ip\r\n\r\nq,\"198.51.100.1\"\r\n", NULL),
			0);
	CU_ASSERT_EQUAL(sites.n, 1);
	sites_free(&sites);
	assert_sites_error("\n\nname,source_ip\n\na,198.51.100.1\n\nb,198.51.100.300\n", NULL,
			   "sites.csv:7:2: source_ip: \"198.51.100.300\" is not an IPv4 address "
			   "(a.b.c.d)");
	assert_sites_error("name,source_ip,traffic_type\n\"a\",198.51.100.1,\"iot\n\"\n"
			   "b,198.51.100.2,bad\n", NULL,
			   "sites.csv:2:3: traffic_type: control character 0x0a in the value");
	/* Old Mac line ends: each CR is a line. */
	assert_sites_error("name,source_ip,key\ra,198.51.100.1,\rb,198.51.100.1,7\r", NULL,
			   "sites.csv:3:2: source_ip: 198.51.100.1 is also the source IP of \"a\" "
			   "on row 2, and that site has no key; sites that share a source IP need "
			   "distinct keys");
	assert_sites_error("name,source_ip\r\ra,1.2.3.4\rb\",2.3.4.5\r", NULL,
			   "sites.csv:4:1: bad quoting: a quote inside an unquoted field or after "
			   "a closing quote; quote the whole field and double any quote inside it");
	assert_sites_error("name,source_ip\n\"a,198.51.100.1\n", NULL,
			   "sites.csv:2:1: a quoted field is never closed");
	assert_sites_error("", NULL, "sites.csv:1:1: no header row (it names the columns: at "
			   "least name,source_ip)");
	assert_sites_error("\n\n", NULL, "sites.csv:1:1: no header row (it names the columns: "
			   "at least name,source_ip)");
	CU_ASSERT_EQUAL(parse("name,source_ip\n", NULL), 0);
	CU_ASSERT_EQUAL(sites.n, 0);
	sites_free(&sites);
}

static void test_sites_header_errors(void)
{
	assert_sites_error("name,source_ip,Name\n", NULL,
			   "sites.csv:1:3: unknown column \"Name\" (known: name, source_ip, "
			   "traffic_type, services, keepalive, enabled, tenant, key, http_ports, "
			   "rate_mbps)");
	assert_sites_error("source_ip,key,source_ip\n", NULL,
			   "sites.csv:1:3: column \"source_ip\" appears twice (also column 1)");
	assert_sites_error("key,source_ip\n", NULL,
			   "sites.csv:1:1: the header has no \"name\" column (required)");
	assert_sites_error("\nname,key\n", NULL,
			   "sites.csv:2:1: the header has no \"source_ip\" column (required)");
}

static void test_sites_row_errors(void)
{
	assert_sites_error("name,source_ip,key\na,198.51.100.1\n", NULL,
			   "sites.csv:2:3: 2 fields, the header has 3");
	assert_sites_error("name,source_ip\na,198.51.100.1,\n", NULL,
			   "sites.csv:2:3: more fields than the header's 2; quote values that "
			   "contain a comma");
	assert_sites_error("name,source_ip\n\"\",198.51.100.1\n", NULL,
			   "sites.csv:2:1: name: must not be empty");
	assert_sites_error("source_ip,name\n,a\n", NULL,
			   "sites.csv:2:1: source_ip: must not be empty");
	assert_sites_error("name,source_ip\na,0.1.2.3\n", NULL,
			   "sites.csv:2:2: source_ip: 0.1.2.3 is not a unicast address");
	assert_sites_error("name,source_ip,tenant\na,198.51.100.1,globex\n", &conf,
			   "sites.csv:2:3: tenant: \"globex\" is not a tenant of the "
			   "configuration (tenants: default, acme)");
	/* Without a configuration any well-formed tenant name is accepted. */
	CU_ASSERT_EQUAL(parse("name,source_ip,tenant\na,198.51.100.1,globex\n", NULL), 0);
	sites_free(&sites);
	load_two_tenants();
	assert_sites_error("name,source_ip\na,198.51.100.1\nb,198.51.100.2\nc,198.51.100.3\n"
			   "d,198.51.100.4\n", &conf,
			   "sites.csv:5:1: more than gateway.max_sites (3) sites");
}

static void test_sites_file_rules(void)
{
	assert_sites_error("name,source_ip\nx,198.51.100.1\ny,198.51.100.2\nx,198.51.100.3\n",
			   NULL, "sites.csv:4:1: name: \"x\" is already used on row 2");
	assert_sites_error("key,name,source_ip\n1,a,198.51.100.1\n,b,198.51.100.1\n", NULL,
			   "sites.csv:3:3: source_ip: 198.51.100.1 is also the source IP of \"a\" "
			   "on row 2, and this site has no key; sites that share a source IP need "
			   "distinct keys");
	assert_sites_error("key,name,source_ip\n,a,198.51.100.1\n1,b,198.51.100.1\n", NULL,
			   "sites.csv:3:3: source_ip: 198.51.100.1 is also the source IP of \"a\" "
			   "on row 2, and that site has no key; sites that share a source IP need "
			   "distinct keys");
	assert_sites_error("name,source_ip,key\na,198.51.100.1,1\nb,198.51.100.1,2\n"
			   "c,198.51.100.1,1\n", NULL,
			   "sites.csv:4:3: key: 1 is also the key of \"a\" on row 2, which has the "
			   "same source IP 198.51.100.1; sites that share a source IP need "
			   "distinct keys");
	/* The first conflict in the file wins, whatever the rule. */
	assert_sites_error("name,source_ip,key\nz,198.51.100.1,1\nz,198.51.100.2,\n"
			   "b,198.51.100.1,1\n", NULL,
			   "sites.csv:3:1: name: \"z\" is already used on row 2");
	assert_sites_error("name,source_ip,key\nz,198.51.100.1,1\ny,198.51.100.1,1\n"
			   "z,198.51.100.2,\n", NULL,
			   "sites.csv:3:3: key: 1 is also the key of \"z\" on row 2, which has the "
			   "same source IP 198.51.100.1; sites that share a source IP need "
			   "distinct keys");
	CU_ASSERT_EQUAL(parse("name,source_ip,key\na,198.51.100.1,1\nb,198.51.100.1,2\n"
			      "c,198.51.100.1,0\nd,198.51.100.2,1\n", NULL), 0);
	CU_ASSERT_EQUAL(sites.n, 4);
	sites_free(&sites);
}

static void assert_set_error(const char *column, const char *value, const char *want)
{
	struct site_conf s;

	site_conf_init(&s);
	CU_ASSERT_EQUAL(site_conf_set(&s, column, value, err), -1);
	if (strcmp(err, want))
		fprintf(stderr, "\nwant: %s\ngot:  %s\n", want, err);
	CU_ASSERT_STRING_EQUAL(err, want);
}

static void test_site_conf_set(void)
{
	struct site_conf s;

	site_conf_init(&s);
	CU_ASSERT_EQUAL(site_conf_set(&s, "name", "Br.anch_1-x", err), 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "services", "cfw+swg", err), 0);
	CU_ASSERT_STRING_EQUAL(sites_services_name(s.services), "swg+cfw");
	CU_ASSERT_EQUAL(site_conf_set(&s, "services", "", err), 0);
	CU_ASSERT_EQUAL(s.services, 3);
	CU_ASSERT_EQUAL(site_conf_set(&s, "key", "0", err), 0);
	CU_ASSERT(s.has_key && s.key == 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "key", "", err), 0);
	CU_ASSERT(!s.has_key);
	CU_ASSERT_EQUAL(site_conf_set(&s, "http_ports", "1;65535;8;7;6;5;4;3", err), 0);
	CU_ASSERT_EQUAL(s.n_http_ports, 8);
	CU_ASSERT_EQUAL(s.http_ports[0], 1);
	CU_ASSERT_EQUAL(s.http_ports[7], 65535);
	CU_ASSERT_EQUAL(site_conf_set(&s, "http_ports", "", err), 0);
	CU_ASSERT_EQUAL(s.n_http_ports, 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "rate_mbps", "100000", err), 0);
	CU_ASSERT_EQUAL(s.rate_bps, 100000000000ULL);
	CU_ASSERT_EQUAL(site_conf_set(&s, "rate_mbps", "", err), 0);
	CU_ASSERT_EQUAL(s.rate_bps, 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "tenant", "", err), 0);
	CU_ASSERT_STRING_EQUAL(s.tenant, "default");
	CU_ASSERT_EQUAL(site_conf_set(&s, "traffic_type", "machine", err), 0);
	CU_ASSERT_EQUAL(s.traffic_type, SHM_TRAFFIC_MACHINE);
	CU_ASSERT_EQUAL(site_conf_set(&s, "enabled", "no", err), 0);
	CU_ASSERT(!s.enabled);
	CU_ASSERT_STRING_EQUAL(sites_services_name(SHM_SVC_BIT(SHM_SVC_SWG)), "swg");
	CU_ASSERT_STRING_EQUAL(sites_services_name(SHM_SVC_BIT(SHM_SVC_CFW)), "cfw");

	assert_set_error("colour", "red", "colour: unknown column (known: name, source_ip, "
			 "traffic_type, services, keepalive, enabled, tenant, key, http_ports, "
			 "rate_mbps)");
	assert_set_error("name", "a b", "name: \"a b\" is not a valid name (1 to 63 characters "
			 "of A-Z a-z 0-9 . _ -)");
	assert_set_error("source_ip", "224.0.0.1", "source_ip: 224.0.0.1 is not a unicast "
			 "address");
	assert_set_error("source_ip", " 1.2.3.4", "source_ip: \" 1.2.3.4\" is not an IPv4 "
			 "address (a.b.c.d)");
	assert_set_error("traffic_type", "User", "traffic_type: \"User\" is not a traffic type "
			 "(user, iot, mixed, machine or guest-wifi)");
	for (const char *const *v = (const char *const[]){ "swg+", "+cfw", "swg++cfw",
			"swg+cfw+swg", "none", NULL }; *v; v++) {
		char want[128];

		snprintf(want, sizeof(want), "services: \"%s\" is not a set of services (swg, cfw "
			 "or swg+cfw)", *v);
		assert_set_error("services", *v, want);
	}
	assert_set_error("keepalive", "Yes", "keepalive: \"Yes\" is neither yes nor no");
	assert_set_error("key", "-1", "key: \"-1\" is not a GRE key (a decimal number "
			 "0..4294967295, or empty for none)");
	assert_set_error("key", "1.2.3.4", "key: \"1.2.3.4\" is not a GRE key (a decimal "
			 "number 0..4294967295, or empty for none)");
	assert_set_error("http_ports", "80;;443", "http_ports: \"80;;443\" is not a list of "
			 "ports (1..65535 separated by ';', e.g. 80;8080)");
	assert_set_error("http_ports", "80;", "http_ports: \"80;\" is not a list of ports "
			 "(1..65535 separated by ';', e.g. 80;8080)");
	assert_set_error("http_ports", "0", "http_ports: \"0\" is not a list of ports "
			 "(1..65535 separated by ';', e.g. 80;8080)");
	assert_set_error("http_ports", "80;80", "http_ports: port 80 is listed twice");
	assert_set_error("http_ports", "1;2;3;4;5;6;7;8;9", "http_ports: more than 8 ports");
	assert_set_error("rate_mbps", "100001", "rate_mbps: \"100001\" is not a rate in Mbit/s "
			 "(1..100000, or empty for the POP's default)");
	assert_set_error("rate_mbps", "1.5", "rate_mbps: \"1.5\" is not a rate in Mbit/s "
			 "(1..100000, or empty for the POP's default)");
}

static struct site_conf make_site(const char *name, const char *ip, const char *key)
{
	struct site_conf s;

	site_conf_init(&s);
	CU_ASSERT_EQUAL(site_conf_set(&s, "name", name, err), 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "source_ip", ip, err), 0);
	CU_ASSERT_EQUAL(site_conf_set(&s, "key", key, err), 0);
	return s;
}

static void test_sites_set_operations(void)
{
	struct sites set = { 0 }, copy;
	struct site_conf s;

	for (int i = 0; i < 40; i++) {
		char name[16], key[16];

		snprintf(name, sizeof(name), "s%02d", (i * 7) % 40);
		snprintf(key, sizeof(key), "%d", i);
		s = make_site(name, "198.51.100.1", key);
		CU_ASSERT_EQUAL(sites_add(&set, &s), 0);
	}
	CU_ASSERT_EQUAL(set.n, 40);
	for (unsigned i = 1; i < set.n; i++)
		CU_ASSERT(strcmp(set.site[i - 1].name, set.site[i].name) < 0);
	CU_ASSERT_EQUAL(sites_add(&set, &s), -EEXIST);
	CU_ASSERT_EQUAL(sites_validate(&set, NULL, err), 0);

	CU_ASSERT_EQUAL(sites_copy(&copy, &set), 0);
	sites_remove(&set, "s00");
	sites_remove(&set, "s39");
	sites_remove(&set, "absent");
	CU_ASSERT_EQUAL(set.n, 38);
	CU_ASSERT_PTR_NULL(sites_find(&set, "s00"));
	CU_ASSERT_STRING_EQUAL(set.site[0].name, "s01");
	CU_ASSERT_EQUAL(copy.n, 40);
	CU_ASSERT_PTR_NOT_NULL(sites_find(&copy, "s00"));

	/* Keys no longer distinct: s01 and s02 share one. */
	sites_find(&copy, "s02")->key = sites_find(&copy, "s01")->key;
	CU_ASSERT_EQUAL(sites_validate(&copy, NULL, err), -1);
	CU_ASSERT(strstr(err, "site \"s02\": key: ") == err);
	CU_ASSERT(strstr(err, "is also the key of \"s01\", which has the same source IP "
			 "198.51.100.1") != NULL);
	sites_find(&copy, "s02")->has_key = false;
	CU_ASSERT_EQUAL(sites_validate(&copy, NULL, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "site \"s02\": source_ip: 198.51.100.1 is also the source "
			       "IP of \"s00\", and this site has no key; sites that share a "
			       "source IP need distinct keys");
	load_two_tenants();
	sites_find(&set, "s05")->source_ip.s_addr = inet_addr("198.51.100.5");
	strcpy(sites_find(&set, "s05")->tenant, "globex");
	CU_ASSERT_EQUAL(sites_validate(&set, &conf, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "site \"s05\": tenant: \"globex\" is not a tenant of the "
			       "configuration (tenants: default, acme)");
	strcpy(sites_find(&set, "s05")->tenant, "acme");
	CU_ASSERT_EQUAL(sites_validate(&set, &conf, err), -1);
	CU_ASSERT_STRING_EQUAL(err, "38 sites, more than gateway.max_sites (3)");
	sites_free(&set);
	sites_free(&copy);
	CU_ASSERT_EQUAL(set.n, 0);
	CU_ASSERT_PTR_NULL(set.site);
}

static void test_sites_write_and_save(void)
{
	static const char text[] =
		"http_ports,name,source_ip,key,rate_mbps,services,keepalive\n"
		"443;80,b,198.51.100.2,7,10,cfw,no\n"
		",a,198.51.100.1,,,,\n";
	static const char want[] =
		"name,source_ip,traffic_type,services,keepalive,enabled,tenant,key,http_ports,"
		"rate_mbps\n"
		"a,198.51.100.1,user,swg+cfw,yes,yes,default,,,\n"
		"b,198.51.100.2,user,cfw,no,yes,default,7,80;443,10\n";
	struct sites again;
	char path[PATH_MAX], *out_text = NULL;
	size_t len;
	struct stat st;
	FILE *out;
	DIR *dir;
	struct dirent *d;
	unsigned leftovers = 0;

	CU_ASSERT_EQUAL_FATAL(parse(text, NULL), 0);
	out = open_memstream(&out_text, &len);
	sites_write(&sites, out);
	fclose(out);
	CU_ASSERT_STRING_EQUAL(out_text, want);
	free(out_text);

	snprintf(path, sizeof(path), "%s/sites.csv", tmp_dir);
	write_file("sites.csv", "old contents", 12, path);
	CU_ASSERT_EQUAL(sites_save(&sites, path), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
	CU_ASSERT_EQUAL(sites_load(&again, path, NULL, err), 0);
	CU_ASSERT_EQUAL(again.n, 2);
	CU_ASSERT(memcmp(again.site, sites.site, 2 * sizeof(sites.site[0])) == 0);
	sites_free(&again);
	dir = opendir(tmp_dir);
	CU_ASSERT_FATAL(dir != NULL);
	while ((d = readdir(dir)))
		leftovers += strstr(d->d_name, ".tmp.") != NULL;
	closedir(dir);
	CU_ASSERT_EQUAL(leftovers, 0);

	snprintf(path, sizeof(path), "%s/absent/sites.csv", tmp_dir);
	CU_ASSERT_EQUAL(sites_save(&sites, path), -ENOENT);
	CU_ASSERT_EQUAL(sites_load(&again, path, NULL, err), -1);
	CU_ASSERT_EQUAL(errno, ENOENT);
	strip_dir(err);
	CU_ASSERT_STRING_EQUAL(err, "absent/sites.csv:0:0: cannot read the file: No such file "
			       "or directory");
	CU_ASSERT_EQUAL(again.n, 0);
	sites_free(&sites);
}

/* Run conf_check_main with stdout and stderr in files; returns its status. */
static int run_check(const char *conf_path, const char *sites_path, char **out, char **errs)
{
	char out_path[PATH_MAX], err_path[PATH_MAX];
	int saved_out = dup(1), saved_err = dup(2), fd_out, fd_err, ret;

	snprintf(out_path, sizeof(out_path), "%s/check.out", tmp_dir);
	snprintf(err_path, sizeof(err_path), "%s/check.err", tmp_dir);
	fd_out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fd_err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd_out >= 0 && fd_err >= 0);
	fflush(stdout);
	fflush(stderr);
	dup2(fd_out, 1);
	dup2(fd_err, 2);
	ret = conf_check_main(conf_path, sites_path);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	close(fd_out);
	close(fd_err);
	for (int i = 0; i < 2; i++) {
		FILE *in = fopen(i ? err_path : out_path, "re");
		char **dst = i ? errs : out;
		size_t len = 0;

		CU_ASSERT_FATAL(in != NULL);
		*dst = NULL;
		if (getdelim(dst, &len, '\0', in) < 0) {
			free(*dst);
			*dst = NULL;
		}
		fclose(in);
	}
	return ret;
}

static void test_check_main(void)
{
	char conf_path[PATH_MAX], sites_path[PATH_MAX], text[512], *out, *errs;

	snprintf(text, sizeof(text), MINIMAL_POP "sites_file = \"%s/live.csv\";\n", tmp_dir);
	write_file("check.conf", text, strlen(text), conf_path);
	/* The configuration's sites file does not exist: an empty set. */
	CU_ASSERT_EQUAL(run_check(conf_path, NULL, &out, &errs), 0);
	CU_ASSERT(strncmp(out, "# configuration: ", 17) == 0);
	CU_ASSERT(strstr(out, "\tname = \"fra1\";\n") != NULL);
	CU_ASSERT(strstr(out, "/live.csv (0, the file does not exist)\nname,source_ip,") != NULL);
	if (errs && errs[0])
		fprintf(stderr, "unexpected stderr: %s\n", errs);
	CU_ASSERT(errs == NULL || errs[0] == '\0');
	free(out);
	free(errs);

	write_text("check.csv", "name,source_ip\nz,198.51.100.1\n", sites_path);
	CU_ASSERT_EQUAL(run_check(conf_path, sites_path, &out, &errs), 0);
	CU_ASSERT(strstr(out, "check.csv (1)\nname,source_ip,traffic_type") != NULL);
	CU_ASSERT(strstr(out, "\nz,198.51.100.1,user,swg+cfw,yes,yes,default,,,\n") != NULL);
	free(out);
	free(errs);

	write_text("check.csv", "name,source_ip\nz,198.51.100.1\nz,198.51.100.2\n", sites_path);
	CU_ASSERT_EQUAL(run_check(conf_path, sites_path, &out, &errs), 1);
	CU_ASSERT(out == NULL || out[0] == '\0');
	strip_dir(errs);
	CU_ASSERT_STRING_EQUAL(errs, "check.csv:3:1: name: \"z\" is already used on row 2\n");
	free(out);
	free(errs);

	write_file("check.conf", "pop = { name = 1; };", 20, conf_path);
	CU_ASSERT_EQUAL(run_check(conf_path, sites_path, &out, &errs), 1);
	strip_dir(errs);
	CU_ASSERT_STRING_EQUAL(errs, "check.conf:1: pop.name: expected a string, got an "
			       "integer\n");
	free(out);
	free(errs);
}

static int suite_init(void)
{
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int suite_clean(void)
{
	DIR *dir = opendir(tmp_dir);
	struct dirent *d;
	char path[PATH_MAX];

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, d->d_name);
		unlink(path);
	}
	closedir(dir);
	return rmdir(tmp_dir);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{ "conf defaults", test_conf_defaults },
		{ "conf example file", test_conf_example },
		{ "conf tenants", test_conf_tenants },
		{ "conf prefixes", test_conf_prefixes },
		{ "conf pop errors", test_conf_pop_errors },
		{ "conf gateway errors", test_conf_gateway_errors },
		{ "conf paths", test_conf_paths },
		{ "conf health", test_conf_health },
		{ "conf stats", test_conf_stats },
		{ "conf file errors", test_conf_file_errors },
		{ "conf include", test_conf_include },
		{ "conf all or nothing", test_conf_all_or_nothing },
		{ "conf print round trip", test_conf_print_roundtrip },
		{ "sites defaults", test_sites_defaults },
		{ "sites all columns", test_sites_all_columns },
		{ "sites file forms", test_sites_file_forms },
		{ "sites header errors", test_sites_header_errors },
		{ "sites row errors", test_sites_row_errors },
		{ "sites file-wide rules", test_sites_file_rules },
		{ "site_conf_set", test_site_conf_set },
		{ "sites set operations", test_sites_set_operations },
		{ "sites write and save", test_sites_write_and_save },
		{ "conf_check_main", test_check_main },
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("conf", suite_init, suite_clean);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(suite, tests[i].name, tests[i].func);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}

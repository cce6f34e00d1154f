#include <unistd.h>

#include "lib/conf.h"
#include "lib/options.h"

int options_parse(int argc, char **argv, bool with_sites, void (*usage)(FILE *out),
		  struct options *opts)
{
	const char *optstring = with_sites ? "c:s:ndh" : "c:ndh";
	bool check = false;
	int opt;

	opts->conf_path = OPTIONS_DEFAULT_CONF;
	opts->sites_path = NULL;
	opts->debug = false;
	while ((opt = getopt(argc, argv, optstring)) != -1) {
		switch (opt) {
		case 'c':
			opts->conf_path = optarg;
			break;
		case 's':
			opts->sites_path = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'd':
			opts->debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check)
		return conf_check_main(opts->conf_path, opts->sites_path);
	return -1;
}

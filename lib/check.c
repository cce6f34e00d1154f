/*
 * The -n option every process shares: load the configuration and the sites
 * file as the daemons would, and print both normalised.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/conf.h"

int conf_check_main(const char *conf_path, const char *sites_path)
{
	struct conf *conf = malloc(sizeof(*conf));
	struct sites sites = { 0 };
	char err[CONF_ERR_MAX];
	bool missing = false;
	int ret = 1;

	if (!conf) {
		fprintf(stderr, "%s: out of memory\n", conf_path);
		return 1;
	}
	if (conf_load(conf, conf_path, err) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out_free;
	}
	if (!sites_path)
		sites_path = conf->sites_file;
	if (sites_load(&sites, sites_path, conf, err) < 0) {
		if (errno != ENOENT || access(sites_path, F_OK) == 0) {
			fprintf(stderr, "%s\n", err);
			goto out_free;
		}
		missing = true;
	}
	printf("# configuration: %s\n", conf_path);
	conf_print(conf, stdout);
	printf("# sites: %s (%u%s)\n", sites_path, sites.n, missing ? ", the file does not "
	       "exist" : "");
	sites_write(&sites, stdout);
	ret = fflush(stdout) == 0 ? 0 : 1;
	sites_free(&sites);
out_free:
	free(conf);
	return ret;
}

/*
 * The set of sites: a growable array kept sorted by name, and its CSV form.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/conf_util.h"

/* Index of NAME, or of where it would go (with *found false). */
static unsigned sites_search(const struct sites *sites, const char *name, bool *found)
{
	unsigned lo = 0, hi = sites->n;

	*found = false;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int cmp = strcmp(sites->site[mid].name, name);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct site_conf *sites_find(const struct sites *sites, const char *name)
{
	bool found;
	unsigned i = sites_search(sites, name, &found);

	return found ? &sites->site[i] : NULL;
}

static int sites_reserve(struct sites *sites, unsigned n)
{
	struct site_conf *grown;
	unsigned cap;

	if (n <= sites->cap)
		return 0;
	cap = sites->cap ? sites->cap : 16;
	while (cap < n)
		cap *= 2;
	grown = realloc(sites->site, (size_t)cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	sites->site = grown;
	sites->cap = cap;
	return 0;
}

int sites_add(struct sites *sites, const struct site_conf *site)
{
	bool found;
	unsigned i = sites_search(sites, site->name, &found);

	if (found)
		return -EEXIST;
	if (sites_reserve(sites, sites->n + 1) < 0)
		return -ENOMEM;
	memmove(&sites->site[i + 1], &sites->site[i], (sites->n - i) * sizeof(*site));
	memcpy(&sites->site[i], site, sizeof(*site));
	sites->n++;
	return 0;
}

void sites_remove(struct sites *sites, const char *name)
{
	bool found;
	unsigned i = sites_search(sites, name, &found);

	if (!found)
		return;
	memmove(&sites->site[i], &sites->site[i + 1], (sites->n - i - 1) * sizeof(sites->site[0]));
	sites->n--;
}

int sites_copy(struct sites *dst, const struct sites *src)
{
	memset(dst, 0, sizeof(*dst));
	if (sites_reserve(dst, src->n) < 0)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->site, src->site, src->n * sizeof(src->site[0]));
	dst->n = src->n;
	return 0;
}

void sites_free(struct sites *sites)
{
	free(sites->site);
	memset(sites, 0, sizeof(*sites));
}

/* Every value was validated, so none needs CSV quoting. */
void sites_write(const struct sites *sites, FILE *out)
{
	char value[128];

	for (int c = 0; c < SITES_COL_COUNT; c++)
		fprintf(out, "%s%s", c ? "," : "", sites_column_names[c]);
	fputc('\n', out);
	for (unsigned i = 0; i < sites->n; i++) {
		for (int c = 0; c < SITES_COL_COUNT; c++) {
			site_conf_format(&sites->site[i], (enum sites_column)c, value,
					 sizeof(value));
			fprintf(out, "%s%s", c ? "," : "", value);
		}
		fputc('\n', out);
	}
}

/* fsync the directory holding PATH so the rename itself is durable. */
static int sync_parent_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd, ret = 0;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int sites_write_fd(const struct sites *sites, int fd)
{
	FILE *out = fdopen(fd, "w");
	int ret = 0;

	if (!out) {
		ret = -errno;
		close(fd);
		return ret;
	}
	sites_write(sites, out);
	if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) < 0)
		ret = errno ? -errno : -EIO;
	if (fclose(out) != 0 && ret == 0)
		ret = -errno;
	return ret;
}

int sites_save(const struct sites *sites, const char *path)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644) < 0) {
		ret = -errno;
		close(fd);
		goto out_unlink;
	}
	errno = 0;
	ret = sites_write_fd(sites, fd);
	if (ret < 0)
		goto out_unlink;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	return sync_parent_dir(path);
out_unlink:
	unlink(tmp);
	return ret;
}

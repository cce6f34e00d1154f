/*
 * libFuzzer harness for the configuration loader. `make fuzz` builds it
 * and fuzzes it from tests/golden/conf and tests/fuzz/corpus_conf, with
 * tests/fuzz/libconfig.supp for a leak inside libconfig.
 *
 * The input is handed to conf_load through a memfd (no file on disk). Every
 * input must either load and print to text that loads back to the same
 * print, or fail with one line of "file:line: message".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;

/* Load SIZE bytes of DATA through a memfd; print it into *TEXT on success. */
static int load_bytes(const void *data, size_t size, char **text, char err[CONF_ERR_MAX])
{
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
	char path[64];
	size_t len;
	FILE *out;
	int ret;

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = conf_load(&conf, path, err);
	close(fd);
	if (ret == 0) {
		out = open_memstream(text, &len);
		conf_print(&conf, out);
		fclose(out);
	}
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_MAX], *text = NULL, *again = NULL;

	if (load_bytes(data, size, &text, err) != 0) {
		if (strncmp(err, "/proc/self/fd/", 14) || strchr(err, '\n'))
			abort();
		return 0;
	}
	if (load_bytes(text, strlen(text), &again, err) != 0 || strcmp(text, again))
		abort();
	free(text);
	free(again);
	return 0;
}

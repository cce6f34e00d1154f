/*
 * The dashboard's static files (statsd/www/), built into the binary so that
 * statsd serves them wherever it is installed or run from.
 */
#ifndef STATSD_WWW_H
#define STATSD_WWW_H

#include <stddef.h>

struct www_file {
	const char *path;		/* as requested: "/", "/app.js", ... */
	const char *type;		/* Content-Type */
	const unsigned char *data;
	size_t len;
};

/* The file served at PATH, or NULL. */
const struct www_file *www_find(const char *path);

#endif

#include <string.h>

#include "statsd/www.h"

/* Each file between two symbols, by the assembler (make runs from the top). */
#define WWW_EMBED(sym, file)						\
	__asm__(".section .rodata\n"					\
		".balign 16\n"						\
		".global " #sym "\n" #sym ":\n"				\
		".incbin \"" file "\"\n"				\
		".global " #sym "_end\n" #sym "_end:\n"			\
		".byte 0\n"						\
		".previous\n");						\
	extern const unsigned char sym[], sym##_end[]

WWW_EMBED(www_index_html, "statsd/www/index.html");
WWW_EMBED(www_app_js, "statsd/www/app.js");
WWW_EMBED(www_style_css, "statsd/www/style.css");

const struct www_file *www_find(const char *path)
{
	static struct www_file files[] = {
		{ "/", "text/html; charset=utf-8", NULL, 0 },
		{ "/index.html", "text/html; charset=utf-8", NULL, 0 },
		{ "/app.js", "text/javascript; charset=utf-8", NULL, 0 },
		{ "/style.css", "text/css; charset=utf-8", NULL, 0 },
	};
	static const struct {
		const unsigned char *start, *end;
	} bytes[] = {
		{ www_index_html, www_index_html_end },
		{ www_index_html, www_index_html_end },
		{ www_app_js, www_app_js_end },
		{ www_style_css, www_style_css_end },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(path, files[i].path) != 0)
			continue;
		files[i].data = bytes[i].start;
		files[i].len = (size_t)(bytes[i].end - bytes[i].start);
		return &files[i];
	}
	return NULL;
}

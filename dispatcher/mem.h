/*
 * Allocation that cannot fail quietly. The daemon has no useful way on
 * when memory runs out mid-task: it says so and aborts, and its tasks come
 * back to another daemon when their leases expire.
 */
#ifndef PGDISPATCH_MEM_H
#define PGDISPATCH_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *
mem_strdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL) {
		fputs("pgdispatch: out of memory\n", stderr);
		abort();
	}
	return d;
}

static inline void *
mem_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL) {
		fputs("pgdispatch: out of memory\n", stderr);
		abort();
	}
	return p;
}

#endif

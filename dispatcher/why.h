/*
 * The "why" of a function that fails with a message: a buffer the caller
 * gives (char *why, size_t whylen), filled by the callee.
 */
#ifndef PGDISPATCH_WHY_H
#define PGDISPATCH_WHY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the message into why; returns false, so that failing with a
 * message is one statement: `return why_printf(why, whylen, ...)`. */
static inline bool why_printf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool
why_printf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return false;
}

#endif

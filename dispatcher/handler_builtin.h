/*
 * Builtin handlers: tasks the daemon runs itself, for tests, demos and
 * benchmarks. noop succeeds at once, fail fails at once, sleep succeeds
 * after the payload's "ms" (1 s without it) unless its timeout comes first.
 */
#ifndef PGDISPATCH_HANDLER_BUILTIN_H
#define PGDISPATCH_HANDLER_BUILTIN_H

#include "handler.h"

extern const struct handler_ops handler_builtin_ops;

#endif

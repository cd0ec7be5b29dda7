/*
 * `pgdispatch status`: what an operator wants at a glance, in a terminal:
 * one line per queue, the daemons, the longest-running tasks, the latest
 * failures, and how full the NOTIFY queue is. Each section is a statement
 * over the views an operator would query in psql (sql/status*.sql), so the
 * two never disagree.
 */
#ifndef PGDISPATCH_ADMIN_STATUS_H
#define PGDISPATCH_ADMIN_STATUS_H

int admin_status(const char *database);

#endif

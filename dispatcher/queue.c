/*
 * Task statements (sql/claim.sql and friends) with their parameters and
 * results; see queue.h.
 *
 * Sets of rows travel as PostgreSQL array literals ({1,2,3},
 * {"text","more"}) fed to unnest() in the statement: one round trip and one
 * plan for any number of rows.
 */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "json.h"
#include "log.h"
#include "mem.h"

/*
 * The statements the daemon runs on its work connection, prepared once per
 * connection by queue_prepare(): each then costs the server no parse and,
 * after a few runs, no planning. Their status predicates are literals, so
 * even a generic plan keeps the partial indexes (pg-pitfalls.md, 2.3).
 */
static const char *const queue_statements[] = {
	"claim", "complete_and_claim", "complete", "retry", "fail", "release", "renew", "owned", "reap", "next_due",
	"sleep_register", "sleep_unregister", "sleep_confirm",
};

bool
queue_prepare(PGconn *conn, struct db_error *err)
{
	PGresult *res = db_exec(conn, embed_sql("work_session"), 0, NULL, err);

	if (res == NULL)
		return false;
	PQclear(res);
	for (size_t i = 0; i < sizeof queue_statements / sizeof queue_statements[0]; i++) {
		res = PQprepare(conn, queue_statements[i], embed_sql(queue_statements[i]), 0, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state != NULL ? state : "");
			snprintf(err->message, sizeof err->message, "preparing %s: %s", queue_statements[i],
			         PQerrorMessage(conn));
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	return true;
}

/* Runs the prepared statement name (sql/NAME.sql) with text parameters. */
static PGresult *
queue_run(PGconn *conn, const char *name, int nparams, const char *const *params,
          struct db_error *err)
{
	return db_exec_prepared(conn, name, nparams, params, err);
}

/* Appends "{1,2,3}". */
static void
queue_array_ll(struct json_buf *b, const long long *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		json_buf_printf(b, "%s%lld", i > 0 ? "," : "", v[i]);
	json_buf_append(b, "}", 1);
}

static void
queue_array_int(struct json_buf *b, const int *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		json_buf_printf(b, "%s%d", i > 0 ? "," : "", v[i]);
	json_buf_append(b, "}", 1);
}

/* Appends one array element: NULL, or the text double-quoted with " and \
 * backslash-escaped (the array input syntax). */
static void
queue_array_elem(struct json_buf *b, const char *s)
{
	if (s == NULL) {
		json_buf_append(b, "NULL", 4);
		return;
	}
	json_buf_append(b, "\"", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			json_buf_append(b, "\\", 1);
		json_buf_append(b, p, 1);
	}
	json_buf_append(b, "\"", 1);
}

static void
queue_array_text(struct json_buf *b, const char *const *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			json_buf_append(b, ",", 1);
		queue_array_elem(b, v[i]);
	}
	json_buf_append(b, "}", 1);
}

/* The outcomes of one type as the array parameters the outcome statements
 * take: ids, attempts, texts (result for a success, else the error) and
 * delays. The caller frees the four buffers. Returns how many. */
struct queue_outcome_arrays {
	struct json_buf ids, attempts, texts, delays;
};

static size_t
queue_outcome_arrays(const struct outcome *o, size_t n, enum outcome_type type,
                     struct queue_outcome_arrays *a)
{
	size_t count = 0;

	memset(a, 0, sizeof *a);
	json_buf_append(&a->ids, "{", 1);
	json_buf_append(&a->attempts, "{", 1);
	json_buf_append(&a->texts, "{", 1);
	json_buf_append(&a->delays, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const char *sep = count > 0 ? "," : "";

		if (o[i].type != type)
			continue;
		json_buf_printf(&a->ids, "%s%lld", sep, o[i].id);
		json_buf_printf(&a->attempts, "%s%d", sep, o[i].attempt);
		json_buf_printf(&a->texts, "%s", sep);
		queue_array_elem(&a->texts, type == OUTCOME_COMPLETE ? o[i].result : o[i].error);
		json_buf_printf(&a->delays, "%s%lld", sep, (long long) o[i].delay_ms);
		count++;
	}
	json_buf_append(&a->ids, "}", 1);
	json_buf_append(&a->attempts, "}", 1);
	json_buf_append(&a->texts, "}", 1);
	json_buf_append(&a->delays, "}", 1);
	return count;
}

static void
queue_outcome_arrays_free(struct queue_outcome_arrays *a)
{
	json_buf_free(&a->ids);
	json_buf_free(&a->attempts);
	json_buf_free(&a->texts);
	json_buf_free(&a->delays);
}

static int
queue_cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *) a, y = *(const long long *) b;

	return (x > y) - (x < y);
}

static bool
queue_has_id(const long long *sorted, int n, long long id)
{
	return bsearch(&id, sorted, (size_t) n, sizeof id, queue_cmp_ll) != NULL;
}

int
queue_claim(PGconn *conn, const struct queue_claimer *who, const char *queue, int limit,
            const struct queue_kinds *skip, const struct outcome *done, size_t ndone, bool *kept,
            struct task *out, struct db_error *err)
{
	struct json_buf skipped = {0};
	struct queue_outcome_arrays a = {0};
	char limit_s[16], lease_s[24];
	const char *params[8];
	int off = ndone > 0 ? 1 : 0;  /* the combined statement leads with a tag */
	PGresult *res;
	int n = 0;

	snprintf(limit_s, sizeof limit_s, "%d", limit);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) who->lease_ms);
	queue_array_text(&skipped, skip->names, skip->count);
	params[0] = queue;
	params[1] = limit_s;
	params[2] = who->instance;
	params[3] = lease_s;
	params[4] = skipped.data;
	if (ndone > 0) {
		(void) queue_outcome_arrays(done, ndone, OUTCOME_COMPLETE, &a);
		params[5] = a.ids.data;
		params[6] = a.attempts.data;
		params[7] = a.texts.data;
		res = queue_run(conn, "complete_and_claim", 8, params, err);
	} else {
		res = queue_run(conn, "claim", 5, params, err);
	}
	json_buf_free(&skipped);
	queue_outcome_arrays_free(&a);
	if (res == NULL)
		return -1;
	if (off) {
		long long *recorded = malloc(((size_t) PQntuples(res) + 1) * sizeof *recorded);
		int nrec = 0;

		if (recorded == NULL)
			abort();
		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(PQgetvalue(res, r, 0), "f") == 0)
				recorded[nrec++] = atoll(PQgetvalue(res, r, 1));
		qsort(recorded, (size_t) nrec, sizeof *recorded, queue_cmp_ll);
		for (size_t i = 0; i < ndone; i++)
			kept[i] = queue_has_id(recorded, nrec, done[i].id);
		free(recorded);
	}
	for (int r = 0; r < PQntuples(res); r++) {
		if (off && strcmp(PQgetvalue(res, r, 0), "f") == 0)
			continue;
		if (n == limit)
			break;
		out[n].id = atoll(PQgetvalue(res, r, off + 0));
		out[n].queue = mem_strdup(PQgetvalue(res, r, off + 1));
		out[n].kind = mem_strdup(PQgetvalue(res, r, off + 2));
		out[n].payload = mem_strdup(PQgetvalue(res, r, off + 3));
		out[n].attempt = atoi(PQgetvalue(res, r, off + 4));
		out[n].max_attempts = atoi(PQgetvalue(res, r, off + 5));
		n++;
	}
	PQclear(res);
	return n;
}

/* The ids in column 0 of res, sorted, for queue_has_id(); the caller frees. */
static long long *
queue_sorted_ids(PGresult *res, int *n)
{
	long long *ids;

	*n = PQntuples(res);
	ids = malloc(((size_t) *n + 1) * sizeof *ids);
	if (ids == NULL)
		abort();
	for (int r = 0; r < *n; r++)
		ids[r] = atoll(PQgetvalue(res, r, 0));
	qsort(ids, (size_t) *n, sizeof *ids, queue_cmp_ll);
	return ids;
}

/* Sets kept[i] for outcomes of type whose id came back from the fence
 * (a batch of a thousand outcomes is a thousand lookups, not a million). */
static void
queue_mark_kept(PGresult *res, const struct outcome *o, size_t n, enum outcome_type type, bool *kept)
{
	int nids;
	long long *ids = queue_sorted_ids(res, &nids);

	for (size_t i = 0; i < n; i++)
		if (o[i].type == type)
			kept[i] = queue_has_id(ids, nids, o[i].id);
	free(ids);
}

/* Runs the statement for one outcome type over the outcomes of that type. */
static bool
queue_write_type(PGconn *conn, const char *instance, const struct outcome *o, size_t n,
                 enum outcome_type type, bool *kept, struct db_error *err)
{
	struct queue_outcome_arrays a;
	const char *params[5];
	const char *name = NULL;
	size_t count = queue_outcome_arrays(o, n, type, &a);
	int nparams = 0;
	PGresult *res;

	params[0] = a.ids.data;
	params[1] = a.attempts.data;
	switch (type) {
	case OUTCOME_COMPLETE:
		name = "complete";
		params[2] = a.texts.data;
		params[3] = instance;
		nparams = 4;
		break;
	case OUTCOME_RETRY:
		name = "retry";
		params[2] = a.texts.data;
		params[3] = a.delays.data;
		params[4] = instance;
		nparams = 5;
		break;
	case OUTCOME_FAIL:
		name = "fail";
		params[2] = a.texts.data;
		params[3] = instance;
		nparams = 4;
		break;
	case OUTCOME_RELEASE:
		/* The instance stays $3, ahead of errors and delays. */
		name = "release";
		params[2] = instance;
		params[3] = a.texts.data;
		params[4] = a.delays.data;
		nparams = 5;
		break;
	}
	res = count == 0 ? NULL : queue_run(conn, name, nparams, params, err);
	queue_outcome_arrays_free(&a);
	if (count == 0)
		return true;
	if (res == NULL)
		return false;
	queue_mark_kept(res, o, n, type, kept);
	PQclear(res);
	return true;
}

/* Runs a transaction-control statement; false with err on failure. */
static bool
queue_tx(PGconn *conn, const char *sql, struct db_error *err)
{
	PGresult *res = db_exec(conn, sql, 0, NULL, err);

	PQclear(res);
	return res != NULL;
}

bool
queue_write_outcomes(PGconn *conn, const char *instance, const struct outcome *outcomes, size_t n,
                     bool *kept, struct db_error *err)
{
	static const enum outcome_type types[] = {OUTCOME_COMPLETE, OUTCOME_RETRY, OUTCOME_FAIL,
	                                          OUTCOME_RELEASE};
	bool present[4] = {false}, multi, ok = true;
	struct db_error ignored;
	int kinds = 0;

	for (size_t i = 0; i < n; i++)
		present[outcomes[i].type] = true;
	for (int t = 0; t < 4; t++)
		kinds += present[t];
	/* Several statements commit together, so a failure leaves nothing
	 * half-written and the whole set can simply be sent again. */
	multi = kinds > 1 && PQtransactionStatus(conn) == PQTRANS_IDLE;
	if (multi && !queue_tx(conn, "BEGIN", err))
		return false;
	for (size_t t = 0; t < sizeof types / sizeof types[0] && ok; t++)
		if (present[types[t]])
			ok = queue_write_type(conn, instance, outcomes, n, types[t], kept, err);
	if (multi && ok)
		ok = queue_tx(conn, "COMMIT", err);
	else if (multi)
		(void) queue_tx(conn, "ROLLBACK", &ignored);
	return ok;
}

/* Sets kept[i] for each ids[i] found in column 0 of res. */
static void
queue_mark_ids(PGresult *res, const long long *ids, size_t n, bool *kept)
{
	int nfound;
	long long *found = queue_sorted_ids(res, &nfound);

	for (size_t i = 0; i < n; i++)
		kept[i] = kept[i] || queue_has_id(found, nfound, ids[i]);
	free(found);
}

bool
queue_renew(PGconn *conn, const struct queue_claimer *who, const long long *ids,
            const int *attempts, size_t n, bool *kept, struct db_error *err)
{
	struct json_buf id_arr = {0}, att_arr = {0};
	char lease_s[24];
	const char *params[4];
	PGresult *res;
	bool all = true, ok;

	queue_array_ll(&id_arr, ids, n);
	queue_array_int(&att_arr, attempts, n);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) who->lease_ms);
	params[0] = id_arr.data;
	params[1] = att_arr.data;
	params[2] = lease_s;
	params[3] = who->instance;
	memset(kept, 0, n * sizeof *kept);
	res = queue_run(conn, "renew", 4, params, err);
	ok = res != NULL;
	if (ok) {
		queue_mark_ids(res, ids, n, kept);
		PQclear(res);
		for (size_t i = 0; i < n; i++)
			all = all && kept[i];
		/* Skipped rows: locked (still ours) or lost? Ask without locking. */
		if (!all) {
			params[2] = who->instance;
			res = queue_run(conn, "owned", 3, params, err);
			ok = res != NULL;
			if (ok) {
				queue_mark_ids(res, ids, n, kept);
				PQclear(res);
			}
		}
	}
	json_buf_free(&id_arr);
	json_buf_free(&att_arr);
	return ok;
}

int
queue_reap(PGconn *conn, const struct queue_kinds *kinds, const int *limits, int default_limit,
           struct db_error *err)
{
	struct json_buf kind_arr = {0}, limit_arr = {0};
	char default_s[16];
	const char *params[3];
	PGresult *res;
	int requeued = 0;

	queue_array_text(&kind_arr, kinds->names, kinds->count);
	queue_array_int(&limit_arr, limits, kinds->count);
	snprintf(default_s, sizeof default_s, "%d", default_limit);
	params[0] = kind_arr.data;
	params[1] = limit_arr.data;
	params[2] = default_s;
	res = queue_run(conn, "reap", 3, params, err);
	json_buf_free(&kind_arr);
	json_buf_free(&limit_arr);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		bool pending = strcmp(PQgetvalue(res, r, 2), "pending") == 0;

		log_warn("task=%s kind=%s attempt=%s lease expired, %s", PQgetvalue(res, r, 0),
		         PQgetvalue(res, r, 1), PQgetvalue(res, r, 3),
		         pending ? "returned to pending" : "no attempts left: failed");
		requeued += pending;
	}
	PQclear(res);
	return requeued;
}

int64_t
queue_next_due(PGconn *conn, const char *queue, const struct queue_kinds *skip, struct db_error *err)
{
	struct json_buf skipped = {0};
	const char *params[2];
	PGresult *res;
	int64_t ms;

	queue_array_text(&skipped, skip->names, skip->count);
	params[0] = queue;
	params[1] = skipped.data;
	res = queue_run(conn, "next_due", 2, params, err);
	json_buf_free(&skipped);
	if (res == NULL)
		return -1;
	ms = PQgetisnull(res, 0, 0) ? INT64_MAX : atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return ms;
}

int
queue_send_complete_one(PGconn *conn, const char *instance, const struct task *t)
{
	char ids[32], attempts[32];
	const char *params[4] = {ids, attempts, "{NULL}", instance};

	snprintf(ids, sizeof ids, "{%lld}", t->id);
	snprintf(attempts, sizeof attempts, "{%d}", t->attempt);
	return PQsendQueryParams(conn, embed_sql("complete"), 4, NULL, params, NULL, NULL, 0);
}

bool
queue_sleep_register(PGconn *conn, const char *instance, const char *const *queues, size_t n,
                     struct db_error *err)
{
	struct json_buf arr = {0};
	const char *params[2];
	PGresult *res;

	queue_array_text(&arr, queues, n);
	params[0] = instance;
	params[1] = arr.data;
	res = queue_run(conn, "sleep_register", 2, params, err);
	json_buf_free(&arr);
	PQclear(res);
	return res != NULL;
}

bool
queue_sleep_unregister(PGconn *conn, const char *instance, struct db_error *err)
{
	const char *params[1] = {instance};
	PGresult *res = queue_run(conn, "sleep_unregister", 1, params, err);

	PQclear(res);
	return res != NULL;
}

int
queue_sleep_confirm(PGconn *conn, struct db_error *err)
{
	PGresult *res = queue_run(conn, "sleep_confirm", 0, NULL, err);
	int free_now;

	if (res == NULL)
		return -1;
	free_now = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return free_now;
}

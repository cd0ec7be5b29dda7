/*
 * The daemon's statements (sql/claim.sql and friends): parameters in,
 * rows out; see queue.h.
 */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "pg_array.h"
#include "source.h"

/* Outcomes as the array parameters of sql/outcomes.sql: ids, tokens,
 * types, texts (the result for a success, else the error) and delays; and
 * keys, for a source's (sql/source_outcomes.sql). */
struct queue_outcome_arrays {
	struct json_buf ids, tokens, types, texts, delays, keys;
};

static void
queue_outcome_arrays(const struct outcome *o, size_t n, struct queue_outcome_arrays *a)
{
	struct json_buf *all[] = {&a->ids, &a->tokens, &a->types, &a->texts, &a->delays, &a->keys};
	/* Keys only for a source's rows: tasks' statements take none. */
	bool keyed = n > 0 && o[0].key != NULL;

	memset(a, 0, sizeof *a);
	for (size_t k = 0; k < 6; k++)
		json_buf_append(all[k], "{", 1);
	for (size_t i = 0; i < n; i++) {
		const char *sep = i > 0 ? "," : "";

		json_buf_printf(&a->ids, "%s%lld", sep, o[i].id);
		json_buf_printf(&a->tokens, "%s%lld", sep, o[i].token);
		json_buf_printf(&a->types, "%s%s", sep, outcome_type_name(o[i].type));
		json_buf_printf(&a->texts, "%s", sep);
		pg_array_elem(&a->texts, o[i].type == OUTCOME_COMPLETE ? o[i].result : o[i].error);
		json_buf_printf(&a->delays, "%s%lld", sep, (long long) o[i].delay_ms);
		if (keyed) {
			json_buf_printf(&a->keys, "%s", sep);
			pg_array_elem(&a->keys, o[i].key);
		}
	}
	for (size_t k = 0; k < 6; k++)
		json_buf_append(all[k], "}", 1);
}

static void
queue_outcome_arrays_free(struct queue_outcome_arrays *a)
{
	json_buf_free(&a->ids);
	json_buf_free(&a->tokens);
	json_buf_free(&a->types);
	json_buf_free(&a->texts);
	json_buf_free(&a->delays);
	json_buf_free(&a->keys);
}

/* A claim as it came back from a fence: the key its rows are found by. */
struct queue_claim_key {
	long long id, token;
	char fate;
};

static int
queue_cmp_key(const void *a, const void *b)
{
	const struct queue_claim_key *x = a, *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->token > y->token) - (x->token < y->token);
}

/*
 * Reads the fates a fenced statement returned (rows with id, token and
 * fate in columns id_col, id_col + 1 and fate_col; rows whose fate_col is
 * not a fate are skipped) and sets fates[i] for each claim ids/tokens[i],
 * which are stride bytes apart (fields of an array of structs); a claim
 * with no row comes out as missing says. A thousand claims are a thousand
 * lookups, not a million.
 */
static void
queue_read_fates(PGresult *res, int fate_col, int id_col, const long long *ids, const long long *tokens,
                 size_t stride, size_t n, char missing, char *fates)
{
	struct queue_claim_key *keys = malloc(((size_t) PQntuples(res) + 1) * sizeof *keys);
	size_t nkeys = 0;

	if (keys == NULL)
		abort();
	for (int r = 0; r < PQntuples(res); r++) {
		char fate = PQgetvalue(res, r, fate_col)[0];

		if (fate != QUEUE_WRITTEN && fate != QUEUE_LOCKED && fate != QUEUE_LOST)
			continue;
		keys[nkeys].id = atoll(PQgetvalue(res, r, id_col));
		keys[nkeys].token = atoll(PQgetvalue(res, r, id_col + 1));
		keys[nkeys++].fate = fate;
	}
	qsort(keys, nkeys, sizeof *keys, queue_cmp_key);
	for (size_t i = 0; i < n; i++) {
		const long long *id = (const long long *) ((const char *) ids + i * stride);
		const long long *token = (const long long *) ((const char *) tokens + i * stride);
		struct queue_claim_key want = {*id, *token, 0};
		struct queue_claim_key *got = bsearch(&want, keys, nkeys, sizeof *keys, queue_cmp_key);

		fates[i] = got != NULL ? got->fate : missing;
	}
	free(keys);
}

void
queue_claim_send(const struct queue_claimer *who, const char *queue, int limit, const struct queue_kinds *skip,
                 const struct queue_kinds *limited, const int *rooms, long long token, const struct outcome *done,
                 size_t ndone, work_done_fn cb, void *ctx)
{
	struct json_buf skipped = {0}, limited_arr = {0}, room_arr = {0};
	struct queue_outcome_arrays a;
	char limit_s[16], lease_s[24], token_s[24];
	const char *params[11];

	snprintf(limit_s, sizeof limit_s, "%d", limit);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) who->lease_ms);
	snprintf(token_s, sizeof token_s, "%lld", token);
	pg_array_text(&skipped, skip->names, skip->count);
	pg_array_text(&limited_arr, limited->names, limited->count);
	pg_array_int(&room_arr, rooms, limited->count);
	params[0] = queue;
	params[1] = limit_s;
	params[2] = who->instance;
	params[3] = lease_s;
	params[4] = skipped.data;
	params[5] = token_s;
	params[6] = limited_arr.data;
	params[7] = room_arr.data;
	if (ndone > 0) {
		queue_outcome_arrays(done, ndone, &a);
		params[8] = a.ids.data;
		params[9] = a.tokens.data;
		params[10] = a.texts.data;
		work_send(limited->count > 0 ? "complete_and_claim_limited" : "complete_and_claim", 11, params, cb, ctx);
		queue_outcome_arrays_free(&a);
	} else {
		work_send(limited->count > 0 ? "claim_limited" : "claim", 8, params, cb, ctx);
	}
	json_buf_free(&skipped);
	json_buf_free(&limited_arr);
	json_buf_free(&room_arr);
}

int
queue_claim_result(PGresult *res, long long token, int limit, struct task *out, const struct outcome *done,
                   size_t ndone, char *fates)
{
	int n = 0;

	if (ndone > 0)
		queue_read_fates(res, 0, 1, &done[0].id, &done[0].token, sizeof done[0], ndone, QUEUE_UNSURE, fates);
	for (int r = 0; r < PQntuples(res); r++) {
		if (PQgetvalue(res, r, 0)[0] != 'c')
			continue;
		if (n == limit)
			break;
		out[n].id = atoll(PQgetvalue(res, r, 1));
		out[n].queue = mem_strdup(PQgetvalue(res, r, 3));
		out[n].kind = mem_strdup(PQgetvalue(res, r, 4));
		out[n].payload = mem_strdup(PQgetvalue(res, r, 5));
		out[n].attempt = atoi(PQgetvalue(res, r, 6));
		out[n].max_attempts = atoi(PQgetvalue(res, r, 7));
		/* A source's claim (sql/source_claim.sql) adds the row's key. */
		out[n].key = PQnfields(res) > 8 ? mem_strdup(PQgetvalue(res, r, 8)) : NULL;
		out[n].token = token;
		n++;
	}
	return n;
}

void
queue_outcomes_send(const struct outcome *outcomes, size_t n, work_done_fn cb, void *ctx)
{
	struct queue_outcome_arrays a;
	const char *params[5];

	const struct source *src = n > 0 ? source_get(outcomes[0].source) : NULL;

	queue_outcome_arrays(outcomes, n, &a);
	params[0] = a.ids.data;
	params[1] = a.tokens.data;
	params[2] = a.types.data;
	params[3] = a.texts.data;
	params[4] = a.delays.data;
	if (src != NULL) {
		/* Outcomes of one source at a time (the outbox sends them so). */
		const char *sp[7] = {src->name, a.ids.data, a.keys.data, a.tokens.data, a.types.data, a.texts.data,
		                     a.delays.data};

		work_send_sql(src->stmt_name[SOURCE_STMT_OUTCOMES], src->sql[SOURCE_STMT_OUTCOMES], 7, sp, cb, ctx);
	} else {
		work_send("outcomes", 5, params, cb, ctx);
	}
	queue_outcome_arrays_free(&a);
}

void
queue_outcomes_result(PGresult *res, const struct outcome *outcomes, size_t n, char *fates)
{
	/* Rows: id, token, fate. */
	queue_read_fates(res, 2, 0, &outcomes[0].id, &outcomes[0].token, sizeof outcomes[0], n, QUEUE_LOST, fates);
}

void
queue_renew_send(const long long *ids, const long long *tokens, size_t n, int64_t lease_ms, work_done_fn cb,
                 void *ctx)
{
	struct json_buf id_arr = {0}, token_arr = {0};
	char lease_s[24];
	const char *params[3];

	pg_array_ll(&id_arr, ids, n);
	pg_array_ll(&token_arr, tokens, n);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) lease_ms);
	params[0] = id_arr.data;
	params[1] = token_arr.data;
	params[2] = lease_s;
	work_send("renew", 3, params, cb, ctx);
	json_buf_free(&id_arr);
	json_buf_free(&token_arr);
}

void
queue_renew_result(PGresult *res, const long long *ids, const long long *tokens, size_t n, bool *lost,
                   const char **cancelled)
{
	/* Rows: id, token, cancelled, reason of each claim lost (few, usually
	 * none); every other claim is kept. */
	for (size_t i = 0; i < n; i++) {
		lost[i] = false;
		if (cancelled != NULL)
			cancelled[i] = NULL;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		long long id = atoll(PQgetvalue(res, r, 0)), token = atoll(PQgetvalue(res, r, 1));
		bool was_cancelled = strcmp(PQgetvalue(res, r, 2), "t") == 0;

		for (size_t i = 0; i < n; i++)
			if (ids[i] == id && tokens[i] == token) {
				lost[i] = true;
				if (cancelled != NULL && was_cancelled)
					cancelled[i] = PQgetvalue(res, r, 3);
			}
	}
}

void
queue_reap_send(const struct queue_kinds *kinds, const int *limits, int default_limit, const long long *held,
                size_t nheld, work_done_fn cb, void *ctx)
{
	struct json_buf kind_arr = {0}, limit_arr = {0}, held_arr = {0};
	char default_s[16];
	const char *params[4];

	pg_array_text(&kind_arr, kinds->names, kinds->count);
	pg_array_int(&limit_arr, limits, kinds->count);
	pg_array_ll(&held_arr, held, nheld);
	snprintf(default_s, sizeof default_s, "%d", default_limit);
	params[0] = kind_arr.data;
	params[1] = limit_arr.data;
	params[2] = default_s;
	params[3] = held_arr.data;
	work_send("reap", 4, params, cb, ctx);
	json_buf_free(&kind_arr);
	json_buf_free(&limit_arr);
	json_buf_free(&held_arr);
}

int
queue_reap_result(PGresult *res)
{
	int requeued = 0;

	for (int r = 0; r < PQntuples(res); r++) {
		bool pending = strcmp(PQgetvalue(res, r, 2), "pending") == 0;

		log_warn("task=%s kind=%s attempt=%s lease expired, %s", PQgetvalue(res, r, 0),
		         PQgetvalue(res, r, 1), PQgetvalue(res, r, 3),
		         pending ? "returned to pending" : "no attempts left: failed");
		requeued += pending;
	}
	return requeued;
}

void
queue_next_due_send(const char *queue, const struct queue_kinds *skip, work_done_fn cb, void *ctx)
{
	struct json_buf skipped = {0};
	const char *params[2];

	pg_array_text(&skipped, skip->names, skip->count);
	params[0] = queue;
	params[1] = skipped.data;
	work_send("next_due", 2, params, cb, ctx);
	json_buf_free(&skipped);
}

int64_t
queue_next_due_result(PGresult *res)
{
	return PQntuples(res) == 0 || PQgetisnull(res, 0, 0) ? INT64_MAX : atoll(PQgetvalue(res, 0, 0));
}

int
queue_send_complete_one(PGconn *conn, const struct task *t)
{
	char id[32], token[32];
	const char *params[3] = {id, token};
	const struct source *src = source_get(t->source);

	snprintf(id, sizeof id, "%lld", t->id);
	snprintf(token, sizeof token, "%lld", t->token);
	if (src != NULL) {
		/* A source's row: by its key (sql/source_complete_one.sql). */
		params[0] = src->name;
		params[1] = t->key;
		params[2] = token;
		return PQsendQueryParams(conn, src->sql[SOURCE_STMT_COMPLETE_ONE], 3, NULL, params, NULL, NULL, 0);
	}
	return PQsendQueryParams(conn, embed_sql("complete"), 2, NULL, params, NULL, NULL, 0);
}

void
queue_sleep_register_send(const char *instance, const char *const *queues, size_t n, work_done_fn cb, void *ctx)
{
	struct json_buf arr = {0};
	const char *params[2];

	pg_array_text(&arr, queues, n);
	params[0] = instance;
	params[1] = arr.data;
	work_send("sleep_register", 2, params, cb, ctx);
	json_buf_free(&arr);
}

void
queue_sleep_unregister_send(const char *instance, work_done_fn cb, void *ctx)
{
	const char *params[1] = {instance};

	work_send("sleep_unregister", 1, params, cb, ctx);
}

void
queue_sleep_confirm_send(work_done_fn cb, void *ctx)
{
	work_send("sleep_confirm", 0, NULL, cb, ctx);
}

bool
queue_sleep_confirm_result(PGresult *res)
{
	return PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
}

void
queue_instance_beat_send(const struct queue_instance *me, work_done_fn cb, void *ctx)
{
	struct json_buf queues = {0};
	char pid_s[16], uptime_s[24], concurrency_s[16], running_s[16], lease_s[24];
	const char *params[10];

	pg_array_text(&queues, me->queues, me->nqueues);
	snprintf(pid_s, sizeof pid_s, "%d", me->pid);
	snprintf(uptime_s, sizeof uptime_s, "%lld", (long long) me->uptime_ms);
	snprintf(concurrency_s, sizeof concurrency_s, "%d", me->concurrency);
	snprintf(running_s, sizeof running_s, "%d", me->running);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) me->lease_ms);
	params[0] = me->name;
	params[1] = me->host;
	params[2] = pid_s;
	params[3] = me->version;
	params[4] = uptime_s;
	params[5] = queues.data;
	params[6] = concurrency_s;
	params[7] = running_s;
	params[8] = me->state;
	params[9] = lease_s;
	work_send("instance_beat", 10, params, cb, ctx);
	json_buf_free(&queues);
}

void
queue_instance_beat_result(PGresult *res)
{
	/* Rows: ('gone', name#pid) for each row marked gone, ('removed', n),
	 * ('me', 1). */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *what = PQgetvalue(res, r, 0), *value = PQgetvalue(res, r, 1);

		if (strcmp(what, "gone") == 0)
			log_warn("instance=%s not seen for three of its leases: marked gone", value);
		else if (strcmp(what, "removed") == 0 && atoi(value) > 0)
			log_info("deleted %s instance rows gone for more than a day", value);
	}
}

void
queue_instance_leave_send(const char *name, const char *host, int pid, work_done_fn cb, void *ctx)
{
	char pid_s[16];
	const char *params[3] = {name, host, pid_s};

	snprintf(pid_s, sizeof pid_s, "%d", pid);
	work_send("instance_leave", 3, params, cb, ctx);
}

void
queue_retention_send(enum queue_retention_table table, const char *status, int64_t older_than_ms, int max_rows,
                     work_done_fn cb, void *ctx)
{
	char age_s[24], max_s[16];
	const char *params[3];

	snprintf(age_s, sizeof age_s, "%lld", (long long) older_than_ms);
	snprintf(max_s, sizeof max_s, "%d", max_rows);
	if (table != QUEUE_RETAIN_TASKS) {
		params[0] = age_s;
		params[1] = max_s;
		work_send(table == QUEUE_RETAIN_ATTEMPTS ? "retention_attempts" : "retention_source_rows", 2, params, cb,
		          ctx);
		return;
	}
	params[0] = status;
	params[1] = age_s;
	params[2] = max_s;
	work_send("retention_batch", 3, params, cb, ctx);
}

int
queue_retention_result(PGresult *res)
{
	return PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? atoi(PQgetvalue(res, 0, 0)) : 0;
}

void
queue_schedule_last_send(const char *const *names, size_t n, work_done_fn cb, void *ctx)
{
	struct json_buf arr = {0};
	const char *params[1];

	pg_array_text(&arr, names, n);
	params[0] = arr.data;
	work_send("schedule_last", 1, params, cb, ctx);
	json_buf_free(&arr);
}

void
queue_schedule_last_result(PGresult *res, const char *const *names, size_t n, bool *known, int64_t *last)
{
	for (size_t i = 0; i < n; i++)
		known[i] = false;
	for (int r = 0; r < PQntuples(res); r++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(PQgetvalue(res, r, 0), names[i]) == 0) {
				known[i] = true;
				last[i] = atoll(PQgetvalue(res, r, 1));
			}
}

void
queue_schedule_tick_send(const struct schedule_config *s, int64_t tick, bool enqueue, work_done_fn cb, void *ctx)
{
	char at[32], priority[16], attempts[16];
	const char *params[8] = {s->name, at, s->kind, s->payload, s->queue, priority,
	                         s->max_attempts > 0 ? attempts : NULL, enqueue ? "true" : "false"};

	snprintf(at, sizeof at, "%lld", (long long) tick);
	snprintf(priority, sizeof priority, "%d", s->priority);
	snprintf(attempts, sizeof attempts, "%d", s->max_attempts);
	work_send("schedule_tick", 8, params, cb, ctx);
}

long long
queue_schedule_tick_result(PGresult *res)
{
	return PQntuples(res) > 0 ? atoll(PQgetvalue(res, 0, 0)) : 0;
}

/* --- sources (source.h): the same statements on a source's table ------ */

void
queue_source_claim_send(const struct queue_claimer *who, const struct source *src, int limit, long long token,
                        const struct outcome *done, size_t ndone, work_done_fn cb, void *ctx)
{
	struct queue_outcome_arrays a;
	char limit_s[16], lease_s[24], token_s[24];
	const char *params[9] = {src->name, limit_s, who->instance, lease_s, token_s};

	snprintf(limit_s, sizeof limit_s, "%d", limit);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) who->lease_ms);
	snprintf(token_s, sizeof token_s, "%lld", token);
	if (ndone > 0) {
		queue_outcome_arrays(done, ndone, &a);
		params[5] = a.ids.data;
		params[6] = a.keys.data;
		params[7] = a.tokens.data;
		params[8] = a.texts.data;
		work_send_sql(src->stmt_name[SOURCE_STMT_COMPLETE_AND_CLAIM], src->sql[SOURCE_STMT_COMPLETE_AND_CLAIM], 9,
		              params, cb, ctx);
		queue_outcome_arrays_free(&a);
	} else {
		work_send_sql(src->stmt_name[SOURCE_STMT_CLAIM], src->sql[SOURCE_STMT_CLAIM], 5, params, cb, ctx);
	}
}

void
queue_source_renew_send(const struct source *src, const long long *ids, const char *const *keys,
                        const long long *tokens, size_t n, int64_t lease_ms, work_done_fn cb, void *ctx)
{
	struct json_buf id_arr = {0}, key_arr = {0}, token_arr = {0};
	char lease_s[24];
	const char *params[5];

	pg_array_ll(&id_arr, ids, n);
	pg_array_text(&key_arr, keys, n);
	pg_array_ll(&token_arr, tokens, n);
	snprintf(lease_s, sizeof lease_s, "%lld", (long long) lease_ms);
	params[0] = src->name;
	params[1] = id_arr.data;
	params[2] = key_arr.data;
	params[3] = token_arr.data;
	params[4] = lease_s;
	work_send_sql(src->stmt_name[SOURCE_STMT_RENEW], src->sql[SOURCE_STMT_RENEW], 5, params, cb, ctx);
	json_buf_free(&id_arr);
	json_buf_free(&key_arr);
	json_buf_free(&token_arr);
}

void
queue_source_reap_send(const struct source *src, int max_attempts, const long long *held_tokens, size_t nheld,
                       work_done_fn cb, void *ctx)
{
	struct json_buf held = {0};
	char max_s[16];
	const char *params[3] = {src->name, max_s, NULL};

	snprintf(max_s, sizeof max_s, "%d", max_attempts);
	pg_array_ll(&held, held_tokens, nheld);
	params[2] = held.data;
	work_send_sql(src->stmt_name[SOURCE_STMT_REAP], src->sql[SOURCE_STMT_REAP], 3, params, cb, ctx);
	json_buf_free(&held);
}

int
queue_source_reap_result(PGresult *res)
{
	int requeued = 0;

	/* Rows: key, source, status, attempts. */
	for (int r = 0; r < PQntuples(res); r++) {
		bool pending = strcmp(PQgetvalue(res, r, 2), "pending") == 0;

		log_warn("source=%s key=%s attempt=%s lease expired, %s", PQgetvalue(res, r, 1), PQgetvalue(res, r, 0),
		         PQgetvalue(res, r, 3), pending ? "returned to pending" : "no attempts left: failed");
		requeued += pending;
	}
	return requeued;
}

void
queue_source_next_due_send(const struct source *src, work_done_fn cb, void *ctx)
{
	const char *params[1] = {src->name};

	work_send_sql(src->stmt_name[SOURCE_STMT_NEXT_DUE], src->sql[SOURCE_STMT_NEXT_DUE], 1, params, cb, ctx);
}

/* HTTP handlers on libcurl's multi interface, in the daemon's loop; see handler_http.h. */
#include "handler_http.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "http_template.h"
#include "log.h"
#include "mem.h"
#include "secrets.h"
#include "slots.h"
#include "version.h"
#include "why.h"

/* Easy handles kept for reuse between tasks, at most. */
#define HTTP_SPARE_MAX 1024

/* One request in flight. */
struct http_task {
	struct handler_task *ht;
	CURL *easy;
	struct curl_slist *headers;
	struct json_buf body;          /* the request's: the task's JSON */
	struct json_buf answer;        /* the response's, up to max_output */
	int64_t max_output;
	long long answer_total;        /* bytes the service sent */
	bool truncated;                /* ... more than max_output: the transfer was cut */
	char status_line[128];         /* "503 Service Unavailable" of the last status line */
	char errbuf[CURL_ERROR_SIZE];
};

static struct {
	CURLM *multi;                  /* NULL until the first request */
	int64_t timer_at;              /* libcurl's timer, monotonic ms; INT64_MAX: none */
	long maxconnects;
	CURL *spare[HTTP_SPARE_MAX];
	int nspare;
} http_local = {.timer_at = INT64_MAX};

/* --- libcurl's callbacks: they record, and never call back into libcurl's
 * transfer functions or the slots (that happens in http_drain()) --------- */

/*
 * libcurl tells which sockets to watch for what. The first time it names a
 * socket, it is made close-on-exec: libcurl's sockets are not (before curl
 * 8.17), and a command handler spawned later must not inherit a
 * connection to a service (handler_cmd.c also closes every fd from 3 up in
 * the child, for the sockets libcurl never shows us).
 */
static int
http_on_socket(CURL *easy, curl_socket_t s, int what, void *clientp, void *socketp)
{
	short events = 0;

	if (what == CURL_POLL_REMOVE) {
		handler_unwatch(s);
		return 0;
	}
	if (socketp == NULL) {
		int flags = fcntl(s, F_GETFD);

		if (flags >= 0)
			fcntl(s, F_SETFD, flags | FD_CLOEXEC);
		curl_multi_assign(http_local.multi, s, &http_local);
	}
	if (what & CURL_POLL_IN)
		events |= POLLIN;
	if (what & CURL_POLL_OUT)
		events |= POLLOUT;
	handler_watch(s, events, &handler_http_ops, NULL);
	return 0;
}

static int
http_on_timer(CURLM *multi, long timeout_ms, void *clientp)
{
	http_local.timer_at = timeout_ms < 0 ? INT64_MAX : clock_now_ms() + timeout_ms;
	return 0;
}

/* The body, kept up to max_output. Past it the transfer is cut: a service
 * that answers with 100 MB costs max_output of memory and that one
 * connection, not the daemon's memory. */
static size_t
http_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct http_task *x = arg;
	size_t len = size * n;
	size_t room = x->answer.len < (size_t) x->max_output ? (size_t) x->max_output - x->answer.len : 0;

	x->answer_total += (long long) len;
	if (len > room) {
		json_buf_append(&x->answer, data, room);
		x->truncated = true;
		return CURL_WRITEFUNC_ERROR;
	}
	json_buf_append(&x->answer, data, len);
	return len;
}

/* Keeps the last status line's code and reason ("503 Service Unavailable"):
 * a 100 Continue or a redirect's line is replaced by the final one. */
static size_t
http_on_header(char *data, size_t size, size_t n, void *arg)
{
	struct http_task *x = arg;
	size_t len = size * n;
	const char *sp;

	if (len > 5 && memcmp(data, "HTTP/", 5) == 0 && (sp = memchr(data, ' ', len)) != NULL) {
		size_t at = (size_t) (sp + 1 - data), keep = len - at;

		while (keep > 0 && (data[at + keep - 1] == '\r' || data[at + keep - 1] == '\n' || data[at + keep - 1] == ' '))
			keep--;
		if (keep >= sizeof x->status_line)
			keep = sizeof x->status_line - 1;
		memcpy(x->status_line, data + at, keep);
		x->status_line[keep] = '\0';
	}
	return len;
}

/* --- the multi handle ---------------------------------------------------- */

/* Marks every fd above 2 close-on-exec: curl_multi_init() opens a socket
 * pair of its own (its wake-up) that no callback ever shows us. */
static void
http_cloexec_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), flags;

		if (fd > 2 && fd != dirfd(d) && (flags = fcntl(fd, F_GETFD)) >= 0 && !(flags & FD_CLOEXEC))
			fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
	closedir(d);
}

/* The multi handle, made on the first request: a daemon with no HTTP
 * handler never starts libcurl. */
static CURLM *
http_multi(void)
{
	if (http_local.multi != NULL)
		return http_local.multi;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	http_local.multi = curl_multi_init();
	if (http_local.multi == NULL) {
		curl_global_cleanup();
		return NULL;
	}
	http_cloexec_all();
	curl_multi_setopt(http_local.multi, CURLMOPT_SOCKETFUNCTION, http_on_socket);
	curl_multi_setopt(http_local.multi, CURLMOPT_TIMERFUNCTION, http_on_timer);
	return http_local.multi;
}

static void
http_teardown(void)
{
	if (http_local.multi == NULL)
		return;
	for (int i = 0; i < http_local.nspare; i++)
		curl_easy_cleanup(http_local.spare[i]);
	http_local.nspare = 0;
	curl_multi_cleanup(http_local.multi);
	http_local.multi = NULL;
	http_local.timer_at = INT64_MAX;
	http_local.maxconnects = 0;
	curl_global_cleanup();
}

/* --- one request ----------------------------------------------------------- */

static struct curl_slist *
http_header(struct curl_slist *list, const char *line)
{
	struct curl_slist *l = curl_slist_append(list, line);

	if (l == NULL)
		abort();
	return l;
}

/*
 * The request's headers: ours, then the config's. Expect: is sent empty:
 * otherwise libcurl waits up to a second for "100 Continue" before a body
 * over 1 kB, which most services never send.
 */
static bool
http_headers(struct http_task *x, const struct handler_config *hc, char *why, size_t whylen)
{
	const struct task *t = x->ht->task;
	struct json_buf key = {0};
	bool ok = true;

	x->headers = http_header(NULL, "Content-Type: application/json");
	x->headers = http_header(x->headers, "Expect:");
	json_buf_printf(&key, "Idempotency-Key: ");
	if (hc->http_idempotency_tpl != NULL)
		ok = http_template_fill(hc->http_idempotency_tpl, t, false, &key, why, whylen);
	else if (t->key != NULL && strpbrk(t->key, "\r\n") != NULL)
		/* A text key could otherwise add a header of its own. */
		ok = why_printf(why, whylen, "the row's key contains a line break");
	else if (t->key != NULL)
		/* A source's row: its source (t->queue) and key. */
		json_buf_printf(&key, "%s:%s", t->queue, t->key);
	else
		json_buf_printf(&key, "%lld", t->id);
	if (ok)
		x->headers = http_header(x->headers, key.data);
	json_buf_reset(&key);
	json_buf_printf(&key, "X-Pgdispatch-Attempt: %d", t->attempt);
	x->headers = http_header(x->headers, key.data);
	json_buf_free(&key);
	for (char **h = hc->http_headers; h != NULL && *h != NULL; h++)
		x->headers = http_header(x->headers, *h);
	if (!ok) {
		/* The message starts with the template's: say whose. */
		size_t n = strlen(why);
		char head[] = "cannot build the Idempotency-Key: ";

		if (n + sizeof head <= whylen) {
			memmove(why + sizeof head - 1, why, n + 1);
			memcpy(why, head, sizeof head - 1);
		}
	}
	return ok;
}

static CURL *
http_easy(void)
{
	CURL *e;

	if (http_local.nspare > 0) {
		e = http_local.spare[--http_local.nspare];
		curl_easy_reset(e);
		return e;
	}
	e = curl_easy_init();
	if (e == NULL)
		abort();
	return e;
}

/* Sets every option of x's request; false with why when the task cannot
 * make one (its URL or key cannot be filled). */
static bool
http_prepare(struct http_task *x, const struct handler_config *hc, char *why, size_t whylen)
{
	const struct task *t = x->ht->task;
	const struct policy *p = x->ht->policy;
	struct json_buf url = {0};
	CURL *e = x->easy;
	bool ok;

	if (!http_template_fill(hc->http_url_tpl, t, true, &url, why, whylen)) {
		char inner[256];

		snprintf(inner, sizeof inner, "%s", why);
		snprintf(why, whylen, "cannot build the URL: %s", inner);
		json_buf_free(&url);
		return false;
	}
	if (!http_headers(x, hc, why, whylen)) {
		json_buf_free(&url);
		return false;
	}
	task_input_json(&x->body, t, p->max_attempts);
	/* CURLOPT_URL copies the string. */
	ok = curl_easy_setopt(e, CURLOPT_URL, url.data) == CURLE_OK;
	json_buf_free(&url);
	if (!ok) {
		snprintf(why, whylen, "cannot build the URL: libcurl refused it");
		return false;
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	/* The daemon owns signals (signals.c); libcurl must not touch them. */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) p->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (p->timeout_ms < 10000 ? p->timeout_ms : 10000));
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pgdispatch/" PGDISPATCH_VERSION);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* A redirect may not downgrade https to http. */
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
	                 strncasecmp(hc->http_url, "https:", 6) == 0 ? "https" : "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	if (hc->http_follow_redirects) {
		/* Only without configured headers (config_http.c): libcurl
		 * would send them to another host a redirect leads to. */
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
		curl_easy_setopt(e, CURLOPT_POSTREDIR, (long) CURL_REDIR_POST_ALL);
	}
	if (hc->http_ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, hc->http_ca_file);
	if (strcmp(hc->http_method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(hc->http_method, "DELETE") == 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		/* POST, PUT, PATCH: the task is the body (not copied: x keeps it). */
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body.data);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) x->body.len);
		if (strcmp(hc->http_method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, hc->http_method);
	}
	return true;
}

/* Frees x (its easy handle back to the spares) and reports r. The easy
 * handle must be out of the multi handle already. */
static void
http_end(struct http_task *x, struct handler_report *r)
{
	struct handler_task *ht = x->ht;

	if (x->easy != NULL) {
		if (http_local.nspare < HTTP_SPARE_MAX)
			http_local.spare[http_local.nspare++] = x->easy;
		else
			curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	json_buf_free(&x->body);
	json_buf_free(&x->answer);
	free(x);
	ht->state = NULL;
	slots_done(ht, r);
}

/* A failure's report, with every ${VAR} value the config expanded taken
 * out: a service may echo our headers back in its error page. */
static void
http_end_failed(struct http_task *x, const char *error, bool final, int64_t delay_ms)
{
	struct json_buf clean = {0};
	struct handler_report r = {.end = HANDLER_FAILED, .final = final, .delay_ms = delay_ms};

	secrets_redact(&clean, error, strlen(error));
	r.error = clean.data != NULL ? clean.data : "";
	http_end(x, &r);
	json_buf_free(&clean);
}

static void
http_start(struct handler_task *ht, const struct handler_config *hc, const struct handler_env *env)
{
	struct http_task *x = mem_calloc(1, sizeof *x);
	CURLM *multi = http_multi();
	char why[512];

	x->ht = ht;
	ht->state = x;
	x->max_output = hc->max_output;
	if (multi == NULL) {
		http_end_failed(x, "cannot start libcurl", false, 0);
		return;
	}
	/* Idle connections kept: one per task that may be in flight, so a
	 * steady load never reconnects (libcurl's default is smaller). */
	if (http_local.maxconnects < env->cfg->concurrency) {
		http_local.maxconnects = env->cfg->concurrency;
		curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, http_local.maxconnects);
	}
	x->easy = http_easy();
	if (!http_prepare(x, hc, why, sizeof why)) {
		http_end_failed(x, why, true, 0);
		return;
	}
	if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) {
		http_end_failed(x, "cannot start the request (libcurl refused it)", false, 0);
		return;
	}
	/* libcurl has set its timer to 0: the next turn's tick starts the
	 * request, with every other one this claim brought. */
}

/* --- how a request ended ------------------------------------------------ */

/* The answer's body as a result: JSON as is, anything else a JSON string,
 * nothing NULL. */
static char *
http_result(const struct http_task *x)
{
	const struct task *t = x->ht->task;
	struct json_buf quoted = {0};
	char *result;

	if (x->truncated)
		log_warn("task=%s kind=%s answer truncated to %lld bytes (max_output) of %lld or more",
		         task_name(t), t->kind, (long long) x->max_output, x->answer_total);
	if (x->answer.len == 0)
		return NULL;
	if (!x->truncated && json_valid(x->answer.data, x->answer.len))
		return mem_strdup(x->answer.data);
	json_append_string(&quoted, x->answer.data, x->answer.len);
	result = mem_strdup(quoted.data);
	json_buf_free(&quoted);
	return result;
}

/* "HTTP 503 Service Unavailable: <the body's start>" */
static void
http_status_text(const struct http_task *x, long code, struct json_buf *msg)
{
	/* Secrets are taken out before the cut, so none is cut in half with
	 * its start left in (a value is far shorter than the margin). */
	size_t look = x->answer.len < HTTP_ERROR_EXCERPT * 4 ? x->answer.len : HTTP_ERROR_EXCERPT * 4;
	struct json_buf clean = {0};
	size_t n;

	if (x->status_line[0] != '\0')
		json_buf_printf(msg, "HTTP %s", x->status_line);
	else
		json_buf_printf(msg, "HTTP %ld", code);
	if (look == 0)
		return;
	secrets_redact(&clean, x->answer.data, look);
	n = clean.len < HTTP_ERROR_EXCERPT ? clean.len : HTTP_ERROR_EXCERPT;
	json_buf_printf(msg, ": ");
	json_append_text(msg, clean.data, n);
	json_buf_free(&clean);
	while (msg->len > 0 && (msg->data[msg->len - 1] == '\n' || msg->data[msg->len - 1] == '\r'
	                        || msg->data[msg->len - 1] == ' '))
		msg->data[--msg->len] = '\0';
	if (x->answer_total > (long long) n)
		json_buf_printf(msg, " ... (%lld bytes)", x->answer_total);
}

/* The least delay a 408/425/429/5xx asks for (Retry-After: seconds or an
 * HTTP date, which libcurl parses), in ms. */
static int64_t
http_retry_after_ms(CURL *e)
{
	curl_off_t s = 0;

	if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &s) != CURLE_OK || s <= 0)
		return 0;   /* a date in the past comes back negative */
	if (s > HTTP_RETRY_AFTER_MAX_MS / 1000)
		return HTTP_RETRY_AFTER_MAX_MS;
	return (int64_t) s * 1000;
}

/* Judges a request libcurl has finished, and reports it. */
static void
http_finish(struct http_task *x, CURLcode rc)
{
	struct json_buf msg = {0};
	long code = 0;
	int64_t delay = 0;

	curl_multi_remove_handle(http_local.multi, x->easy);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	/* A body cut at max_output is still an answer. */
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && x->truncated)) {
		/* libcurl's error buffer names the host, the port and the
		 * reason ("Failed to connect to 127.0.0.1 port 8081 after 0 ms:
		 * Couldn't connect to server"), never a header. */
		if (rc == CURLE_OPERATION_TIMEDOUT)
			json_buf_printf(&msg, "timed out after %lld ms", (long long) x->ht->policy->timeout_ms);
		else if (x->errbuf[0] != '\0')
			json_append_text(&msg, x->errbuf, strlen(x->errbuf));
		else
			json_buf_printf(&msg, "%s", curl_easy_strerror(rc));
		http_end_failed(x, msg.data, false, 0);
	} else if (code >= 200 && code < 300) {
		struct handler_report r = {.end = HANDLER_SUCCEEDED, .result = http_result(x)};

		http_end(x, &r);
	} else if (code == 408 || code == 425 || code == 429 || code >= 500) {
		delay = http_retry_after_ms(x->easy);
		http_status_text(x, code, &msg);
		if (delay > 0)
			json_buf_printf(&msg, "; retry not before %lld s (Retry-After)", (long long) (delay / 1000));
		http_end_failed(x, msg.data, false, delay);
	} else {
		/* Any other 4xx; a 3xx when redirects are not followed; a 1xx
		 * that ended the exchange. */
		http_status_text(x, code, &msg);
		if (code >= 300 && code < 400)
			json_buf_printf(&msg, " (redirects are not followed: http.follow_redirects)");
		http_end_failed(x, msg.data, true, 0);
	}
	json_buf_free(&msg);
}

/* Reports every request libcurl says is done. Only ever called from our
 * own turn, never from inside a libcurl callback. */
static void
http_drain(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(http_local.multi, &left)) != NULL) {
		char *x = NULL;
		CURLcode rc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		/* m is libcurl's until the handle is removed: copy first. */
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		http_finish((struct http_task *) x, rc);
	}
}

/* --- the loop's side ------------------------------------------------------ */

static void
http_ready(int fd, short revents, void *arg)
{
	int flags = 0, running;

	if (http_local.multi == NULL)
		return;
	if (revents & (POLLIN | POLLHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & POLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & (POLLERR | POLLNVAL))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(http_local.multi, fd, flags, &running);
	http_drain();
}

static int64_t
http_next_deadline(void)
{
	return http_local.timer_at;
}

/* libcurl's own timeouts (connect, the request's, retries of its own) and
 * the start of requests just added. */
static void
http_tick(int64_t now)
{
	int running;

	if (http_local.multi == NULL || now < http_local.timer_at)
		return;
	http_local.timer_at = INT64_MAX;
	curl_multi_socket_action(http_local.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_drain();
}

/* Stopping a request is abandoning it: the service may have acted on it,
 * which its Idempotency-Key covers when the task comes back. */
static void
http_stop(struct handler_task *ht)
{
	struct http_task *x = ht->state;
	struct handler_report r = {.end = HANDLER_FAILED, .error = "stopped"};

	curl_multi_remove_handle(http_local.multi, x->easy);
	http_end(x, &r);
}

const struct handler_ops handler_http_ops = {
	.name = "http",
	.label = "HTTP handler",
	.teardown = http_teardown,
	.start = http_start,
	.ready = http_ready,
	.next_deadline = http_next_deadline,
	.tick = http_tick,
	.stop = http_stop,
	.kill = http_stop,
};

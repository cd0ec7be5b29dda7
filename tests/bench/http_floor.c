/*
 * The HTTP floor for `make bench`: how many requests per second the HTTP
 * stub (tests/stub/http_stub.c, ok mode) answers on this box, with no
 * database and no daemon logic in between. The bench measures pgdispatch's
 * HTTP handlers beside it, in the same run.
 *
 * It keeps CONNS keep-alive connections busy for SECONDS, each with one
 * request at a time (no pipelining): the request the daemon sends for a
 * task of kind http.bench, same headers, same body size (the task's JSON,
 * as on a command's stdin). Three clients:
 *
 *   raw         plain sockets and epoll: as little client work as a request
 *               can take, so the figure is the stub's ceiling (when the
 *               stub's core is the one that is full; see cpu_ms)
 *   curl        libcurl's multi interface used as handler_http.c uses it:
 *               per request, the easy handle reset, every option set, the
 *               header list built, the handle added and removed. The
 *               libcurl + stub floor: what the daemon could reach with no
 *               database at all
 *   curl-lean   libcurl with options and headers set once per handle; only
 *               the remove and add per request (what handle reuse and a
 *               prebuilt header list could save)
 *
 * Usage: http_floor --port N [--client raw|curl|curl-lean] [--conns 64]
 *                   [--seconds 5]
 * Prints one line of key=value pairs: client, conns, seconds, requests,
 * rate (requests/s), cpu_ms (this process's user + system CPU time) and
 * errors (answers other than 200). Exits 1 on a refused or closed
 * connection: against the stub in ok mode there should be none.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* The body of a task of kind http.bench, as task_input_json() writes it. */
#define FLOOR_BODY "{\"id\":100000,\"queue\":\"default\",\"kind\":\"http.bench\",\"payload\":{},\"attempt\":1,\"max_attempts\":3}\n"
#define FLOOR_AGENT "pgdispatch/bench"

static struct {
	int port;
	int conns;
	double seconds;
	char url[64];
	int epfd;
	long requests;       /* answered within the window */
	long errors;         /* answered, but not 200 */
	double t_start, t_end, t_stop;   /* monotonic seconds: the window, and when the loop left it */
	double cpu_start, cpu_stop;      /* this process's CPU time then, ms */
} fl = {.conns = 64, .seconds = 5, .epfd = -1};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
	       + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("http_floor: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Every connection is open: the window starts now. */
static void
window_open(void)
{
	fl.t_start = now_s();
	fl.t_end = fl.t_start + fl.seconds;
	fl.cpu_start = cpu_ms();
}

static void
window_close(void)
{
	fl.t_stop = now_s();
	fl.cpu_stop = cpu_ms();
}

/* --- raw: sockets and epoll ------------------------------------------------ */

struct raw_conn {
	int fd;
	size_t sent;         /* of the request */
	char in[4096];
	size_t in_len;
};

static char raw_request[1024];
static size_t raw_request_len;

/* The request libcurl sends for the daemon, header for header. */
static void
raw_build_request(void)
{
	int n = snprintf(raw_request, sizeof raw_request,
	                 "POST /bench HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: " FLOOR_AGENT "\r\n"
	                 "Accept: */*\r\nContent-Type: application/json\r\nIdempotency-Key: 100000\r\n"
	                 "X-Pgdispatch-Attempt: 1\r\nContent-Length: %zu\r\n\r\n%s",
	                 fl.port, strlen(FLOOR_BODY), FLOOR_BODY);

	raw_request_len = (size_t) n;
}

static int
raw_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) fl.port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0)
		die("connect to 127.0.0.1:%d: %s", fl.port, strerror(errno));
	/* As libcurl does: a request goes out whole at once. */
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void
raw_watch(struct raw_conn *c, int op, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (epoll_ctl(fl.epfd, op, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Sends what is left of the request; waits for writability if it must. */
static void
raw_send(struct raw_conn *c)
{
	while (c->sent < raw_request_len) {
		ssize_t n = send(c->fd, raw_request + c->sent, raw_request_len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				raw_watch(c, EPOLL_CTL_MOD, EPOLLOUT);
				return;
			}
			die("send: %s", strerror(errno));
		}
		c->sent += (size_t) n;
	}
	raw_watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

/* True once c->in holds one whole answer (and counts it). */
static bool
raw_answered(struct raw_conn *c)
{
	const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *cl;
	size_t head, body = 0;

	if (end == NULL)
		return false;
	head = (size_t) (end - c->in) + 4;
	if ((cl = strcasestr(c->in, "\r\ncontent-length:")) != NULL && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	if (c->in_len < head + body)
		return false;
	if (c->in_len > head + body)
		die("more than one answer to one request");
	if (strncmp(c->in, "HTTP/1.1 200 ", 13) != 0)
		fl.errors++;
	fl.requests++;
	c->in_len = 0;
	return true;
}

static void
raw_read(struct raw_conn *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len - 1, MSG_DONTWAIT);

	if (n == 0)
		die("the server closed a connection");
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		die("recv: %s", strerror(errno));
	}
	c->in_len += (size_t) n;
	c->in[c->in_len] = '\0';
	if (c->in_len >= sizeof c->in - 1)
		die("an answer over %zu bytes", sizeof c->in);
	if (raw_answered(c)) {
		c->sent = 0;
		raw_send(c);
	}
}

static void
raw_run(void)
{
	struct raw_conn *conns = calloc((size_t) fl.conns, sizeof *conns);
	struct epoll_event evs[256];

	if (conns == NULL)
		die("out of memory");
	raw_build_request();
	for (int i = 0; i < fl.conns; i++) {
		conns[i].fd = raw_connect();
		raw_watch(&conns[i], EPOLL_CTL_ADD, EPOLLIN);
	}
	window_open();
	for (int i = 0; i < fl.conns; i++)
		raw_send(&conns[i]);
	while (now_s() < fl.t_end) {
		int n = epoll_wait(fl.epfd, evs, 256, 100);

		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct raw_conn *c = evs[i].data.ptr;

			if (evs[i].events & EPOLLOUT)
				raw_send(c);
			else
				raw_read(c);
		}
	}
	window_close();
	for (int i = 0; i < fl.conns; i++)
		close(conns[i].fd);
	free(conns);
}

/* --- curl and curl-lean: libcurl's multi interface ------------------------ */

struct curl_slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[256];
	size_t body_len;
	char errbuf[CURL_ERROR_SIZE];
};

static struct {
	CURLM *multi;
	bool lean;
	double timer_at;     /* monotonic seconds, < 0: none */
} cl = {.timer_at = -1};

static int
curl_on_socket(CURL *easy, curl_socket_t s, int what, void *clientp, void *socketp)
{
	struct epoll_event ev = {.data.fd = s};

	if (what == CURL_POLL_REMOVE) {
		(void) epoll_ctl(fl.epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (epoll_ctl(fl.epfd, EPOLL_CTL_MOD, s, &ev) != 0
	    && (errno != ENOENT || epoll_ctl(fl.epfd, EPOLL_CTL_ADD, s, &ev) != 0))
		die("epoll_ctl: %s", strerror(errno));
	return 0;
}

static int
curl_on_timer(CURLM *multi, long timeout_ms, void *clientp)
{
	cl.timer_at = timeout_ms < 0 ? -1 : now_s() + (double) timeout_ms / 1e3;
	return 0;
}

/* The answer is read and dropped (the daemon keeps it up to max_output). */
static size_t
curl_on_body(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* The options handler_http.c's http_prepare() sets for a POST. */
static void
curl_prepare(struct curl_slot *s)
{
	CURL *e = s->easy;

	curl_slist_free_all(s->headers);
	s->headers = curl_slist_append(NULL, "Content-Type: application/json");
	s->headers = curl_slist_append(s->headers, "Expect:");
	s->headers = curl_slist_append(s->headers, "Idempotency-Key: 100000");
	s->headers = curl_slist_append(s->headers, "X-Pgdispatch-Attempt: 1");
	if (s->headers == NULL)
		die("out of memory");
	s->body_len = (size_t) snprintf(s->body, sizeof s->body, "%s", FLOOR_BODY);
	curl_easy_setopt(e, CURLOPT_URL, fl.url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_on_body);
	curl_easy_setopt(e, CURLOPT_USERAGENT, FLOOR_AGENT);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) s->body_len);
}

static void
curl_start(struct curl_slot *s)
{
	if (!cl.lean) {
		curl_easy_reset(s->easy);
		curl_prepare(s);
	}
	if (curl_multi_add_handle(cl.multi, s->easy) != CURLM_OK)
		die("curl_multi_add_handle failed");
}

static void
curl_drain(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(cl.multi, &left)) != NULL) {
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct curl_slot *s = NULL;
		long code = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &s);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		curl_multi_remove_handle(cl.multi, e);
		if (rc != CURLE_OK)
			die("%s", s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(rc));
		if (code != 200)
			fl.errors++;
		fl.requests++;
		curl_start(s);
	}
}

static void
curl_run(void)
{
	struct curl_slot *slots = calloc((size_t) fl.conns, sizeof *slots);
	struct epoll_event evs[256];
	int running;

	if (slots == NULL)
		die("out of memory");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (cl.multi = curl_multi_init()) == NULL)
		die("cannot start libcurl");
	curl_multi_setopt(cl.multi, CURLMOPT_SOCKETFUNCTION, curl_on_socket);
	curl_multi_setopt(cl.multi, CURLMOPT_TIMERFUNCTION, curl_on_timer);
	curl_multi_setopt(cl.multi, CURLMOPT_MAXCONNECTS, (long) fl.conns);
	snprintf(fl.url, sizeof fl.url, "http://127.0.0.1:%d/bench", fl.port);
	for (int i = 0; i < fl.conns; i++) {
		if ((slots[i].easy = curl_easy_init()) == NULL)
			die("curl_easy_init failed");
		curl_prepare(&slots[i]);
	}
	window_open();
	for (int i = 0; i < fl.conns; i++)
		curl_start(&slots[i]);
	while (now_s() < fl.t_end) {
		double now = now_s();
		int wait = cl.timer_at < 0 ? 100 : cl.timer_at <= now ? 0 : (int) ((cl.timer_at - now) * 1e3) + 1;
		int n = epoll_wait(fl.epfd, evs, 256, wait > 100 ? 100 : wait);

		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			int flags = ((evs[i].events & (EPOLLIN | EPOLLHUP)) ? CURL_CSELECT_IN : 0)
			            | ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0)
			            | ((evs[i].events & EPOLLERR) ? CURL_CSELECT_ERR : 0);

			curl_multi_socket_action(cl.multi, evs[i].data.fd, flags, &running);
		}
		if (cl.timer_at >= 0 && cl.timer_at <= now_s()) {
			cl.timer_at = -1;
			curl_multi_socket_action(cl.multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		curl_drain();
	}
	window_close();
	for (int i = 0; i < fl.conns; i++) {
		curl_multi_remove_handle(cl.multi, slots[i].easy);
		curl_easy_cleanup(slots[i].easy);
		curl_slist_free_all(slots[i].headers);
	}
	curl_multi_cleanup(cl.multi);
	curl_global_cleanup();
	free(slots);
}

/* --- main ------------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f, "usage: http_floor --port N [--client raw|curl|curl-lean] [--conns 64] [--seconds 5]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},    {"client", required_argument, NULL, 'c'},
		{"conns", required_argument, NULL, 'n'},   {"seconds", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *client = "raw";
	struct rlimit rl;
	double elapsed;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			fl.port = atoi(optarg);
			break;
		case 'c':
			client = optarg;
			break;
		case 'n':
			fl.conns = atoi(optarg);
			break;
		case 's':
			fl.seconds = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || fl.port <= 0 || fl.port > 65535 || fl.conns < 1 || fl.seconds <= 0
	    || (strcmp(client, "raw") != 0 && strcmp(client, "curl") != 0 && strcmp(client, "curl-lean") != 0)) {
		usage(stderr);
		return 2;
	}
	/* A thousand connections and more: as many descriptors as allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((fl.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	if (strcmp(client, "raw") == 0)
		raw_run();
	else {
		cl.lean = strcmp(client, "curl-lean") == 0;
		curl_run();
	}
	elapsed = fl.t_stop - fl.t_start;
	printf("client=%s conns=%d seconds=%.2f requests=%ld rate=%.0f cpu_ms=%.0f errors=%ld\n", client, fl.conns,
	       elapsed, fl.requests, (double) fl.requests / elapsed, fl.cpu_stop - fl.cpu_start, fl.errors);
	close(fl.epfd);
	return 0;
}

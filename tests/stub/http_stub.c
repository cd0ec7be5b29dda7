/*
 * http-stub: the HTTP service the HTTP handlers' tests, examples and bench
 * talk to. One process, one poll() loop, HTTP/1.1 with keep-alive and
 * Content-Length request bodies (no chunked requests), on 127.0.0.1.
 *
 *   http-stub [--port N] [--port-file PATH] [--log PATH] [--mode M] [--dedupe]
 *             [--chaos seed=S,fail=P,drop=P,drop_after_apply=P,slow=P,slow_ms=N]
 *             [--delay-ms N]
 *
 * Vocabulary. The mode says how every request is answered:
 *   ok                 200 application/json {"ok":true}
 *   status=N[,body=BYTES][,retry_after=V]
 *                      N (200..599) with a short text/plain body, or BYTES
 *                      of 'x'; V is sent verbatim in Retry-After and runs
 *                      to the end of the mode (an HTTP date has commas);
 *                      a 3xx carries Location: /redirected-by-stub
 *   text               200 text/plain hello
 *   empty              204, no body
 *   hang               reads the request, never answers
 *   close              reads the request, closes without an answer
 *   flood=BYTES        200 text/plain with BYTES of 'x', streamed from one
 *                      static buffer (nothing of that size is allocated)
 *   echo               500 text/plain whose body is the request's head
 *                      (request line and headers, as received)
 *   down               no listening socket (connection refused); every
 *                      open connection is closed too, as a service that
 *                      went down would
 * A line "mode M" on stdin changes it at run time; SIGUSR1 toggles down and
 * the mode before it. A request is applied when it gets a 2xx from the mode
 * (or is dropped by drop_after_apply); with --dedupe, a request whose
 * Idempotency-Key was applied before gets 200 {"ok":true,"duplicate":true}
 * and is not applied again. --chaos draws, per request, from a generator
 * seeded with S: drop (close before applying), fail (503), drop_after_apply
 * (apply, then close without answering), slow (answer slow_ms later,
 * default 2000). --delay-ms holds every answer N ms without holding up any
 * other connection.
 *
 * The log (--log): one JSON line per request, written with one write() as
 * soon as the request is read and its fate decided (so a request that is
 * never answered is logged too):
 *   {"t_ms":<wall clock ms>,"conn":<connection number>,"method":..,"path":..,
 *    "idempotency_key":<string|null>,"attempt":<X-Pgdispatch-Attempt|null>,
 *    "body":<the body if it is JSON, else null>,"body_len":N,
 *    "headers":{<lower-case name>:<value>,...},"applied":true|false,
 *    "status":<the status it answers with, null when it never answers>}
 * Every string is valid UTF-8 JSON text: a bad byte becomes U+FFFD.
 *
 * stdout says what happened besides requests, a line each, flushed:
 * "listening port=N", "mode M" (a mode change took effect), "down", "up",
 * "closed conn=N by=peer" (the client closed a connection), "bad line ...".
 * The port file is written (atomically, "N\n") once the port listens: then
 * the stub is ready. SIGTERM or SIGINT: exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STUB_MAX_HEAD (64 * 1024)          /* request line and headers */
#define STUB_MAX_BODY (64 * 1024 * 1024)   /* a request body */
#define STUB_READ_ROOM (64 * 1024)         /* least free room for a read */
#define STUB_PAD_CHUNK (64 * 1024)         /* the static buffer floods are sent from */

/* ---- small growable buffer ---- */

struct buf {
	char *data;
	size_t len, cap;
};

static void
buf_reserve(struct buf *b, size_t more)
{
	size_t need = b->len + more, cap = b->cap != 0 ? b->cap : 256;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	b->data = realloc(b->data, cap);
	if (b->data == NULL)
		abort();
	b->cap = cap;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n + 1);
	if (n > 0)   /* p may be NULL then (no body) */
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, (size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

static void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* ---- JSON: strings out, validity of bodies in ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		len = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		len = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

/* Appends s[0..n) as a JSON string: quotes, escapes, and U+FFFD for a byte
 * that is not UTF-8 (or a NUL, which jsonb refuses). */
static void
json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;

	buf_add(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t len;

		if (p[i] == '"' || p[i] == '\\') {
			char esc[2] = {'\\', (char) p[i]};

			buf_add(b, esc, 2);
			i++;
		} else if (p[i] == 0) {
			buf_add(b, "\\ufffd", 6);
			i++;
		} else if (p[i] < 0x20) {
			buf_printf(b, "\\u%04x", p[i]);
			i++;
		} else if ((len = utf8_seq(p + i, n - i)) != 0) {
			buf_add(b, p + i, len);
			i += len;
		} else {
			buf_add(b, "\\ufffd", 6);
			i++;
		}
	}
	buf_add(b, "\"", 1);
}

static const char *
json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int
json_hex4(const char *p, const char *end)
{
	int v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* After the string at p (on its opening quote), or NULL. Refuses what
 * jsonb refuses too: \u0000 and unpaired surrogates. */
static const char *
json_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char) *p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= end)
			return NULL;
		if (strchr("\"\\/bfnrt", *p) != NULL)
			continue;
		if (*p != 'u')
			return NULL;
		int u = json_hex4(p + 1, end);

		if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF))
			return NULL;
		p += 4;
		if (u >= 0xD800 && u <= 0xDBFF) {
			int lo;

			if (end - p < 7 || p[1] != '\\' || p[2] != 'u')
				return NULL;
			lo = json_hex4(p + 3, end);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return NULL;
			p += 6;
		}
	}
	return NULL;
}

static const char *
json_skip_number(const char *p, const char *end)
{
	const char *start;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		start = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		start = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	return p;
}

/* After the value at p (no leading space), or NULL. */
static const char *
json_skip_value(const char *p, const char *end, int depth)
{
	if (p >= end || depth > 256)
		return NULL;
	switch (*p) {
	case '"':
		return json_skip_string(p, end);
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';

		p = json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= end || *p != '"' || (p = json_skip_string(p, end)) == NULL)
					return NULL;
				p = json_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p = json_ws(p + 1, end);
			}
			if ((p = json_skip_value(p, end, depth + 1)) == NULL)
				return NULL;
			p = json_ws(p, end);
			if (p < end && *p == ',')
				p = json_ws(p + 1, end);
			else if (p < end && *p == close)
				return p + 1;
			else
				return NULL;
		}
	}
	case 't':
		return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default:
		return json_skip_number(p, end);
	}
}

/* True if s[0..n) is one JSON value, valid UTF-8, that jsonb takes. */
static bool
json_valid(const char *s, size_t n)
{
	const char *end = s + n, *p;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq((const unsigned char *) s + i, n - i);

		if (len == 0)
			return false;
		i += len;
	}
	p = json_skip_value(json_ws(s, end), end, 0);
	return p != NULL && json_ws(p, end) == end;
}

/* ---- modes ---- */

enum mode_kind { M_OK, M_STATUS, M_TEXT, M_EMPTY, M_HANG, M_CLOSE, M_FLOOD, M_ECHO, M_DOWN };

struct mode {
	enum mode_kind kind;
	int status;               /* M_STATUS */
	uint64_t bytes;           /* M_FLOOD; M_STATUS's body=, 0: the short text */
	bool has_body_bytes;
	char retry_after[256];    /* M_STATUS, "" for none */
	char text[320];           /* as given, for the ack */
};

static bool
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool
mode_parse(const char *s, struct mode *m, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		enum mode_kind kind;
	} plain[] = {{"ok", M_OK}, {"text", M_TEXT}, {"empty", M_EMPTY}, {"hang", M_HANG},
	             {"close", M_CLOSE}, {"echo", M_ECHO}, {"down", M_DOWN}};

	memset(m, 0, sizeof *m);
	if (strlen(s) >= sizeof m->text) {
		snprintf(why, whylen, "mode too long");
		return false;
	}
	snprintf(m->text, sizeof m->text, "%s", s);
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		if (strcmp(s, plain[i].name) == 0) {
			m->kind = plain[i].kind;
			return true;
		}
	if (strncmp(s, "flood=", 6) == 0) {
		m->kind = M_FLOOD;
		if (!parse_u64(s + 6, strlen(s + 6), &m->bytes)) {
			snprintf(why, whylen, "flood=BYTES wants a number: %s", s);
			return false;
		}
		return true;
	}
	if (strncmp(s, "status=", 7) == 0) {
		const char *p = s + 7;
		size_t n = strcspn(p, ",");
		uint64_t v;

		m->kind = M_STATUS;
		if (!parse_u64(p, n, &v) || v < 200 || v > 599) {
			snprintf(why, whylen, "status=N wants 200..599: %s", s);
			return false;
		}
		m->status = (int) v;
		for (p += n; *p == ','; p += n) {
			p++;
			n = strcspn(p, ",");
			if (strncmp(p, "retry_after=", 12) == 0) {
				/* The rest, commas and all: an HTTP date has one. */
				snprintf(m->retry_after, sizeof m->retry_after, "%s", p + 12);
				if (m->retry_after[0] == '\0' || strpbrk(m->retry_after, "\r\n") != NULL) {
					snprintf(why, whylen, "retry_after= wants a value on one line: %s", s);
					return false;
				}
				return true;
			}
			if (strncmp(p, "body=", 5) == 0 && parse_u64(p + 5, n - 5, &m->bytes)) {
				m->has_body_bytes = true;
				continue;
			}
			snprintf(why, whylen, "status=N takes body=BYTES and retry_after=V, not %.*s", (int) n, p);
			return false;
		}
		return true;
	}
	snprintf(why, whylen, "unknown mode %s (ok, status=N[,body=BYTES][,retry_after=V], text, empty, hang, "
	         "close, flood=BYTES, echo, down)", s);
	return false;
}

struct chaos {
	uint64_t state;
	double fail, drop, drop_after_apply, slow;
	int64_t slow_ms;
};

static bool
chaos_parse(const char *spec, struct chaos *c, char *why, size_t whylen)
{
	char copy[512], *save = NULL;

	memset(c, 0, sizeof *c);
	c->slow_ms = 2000;
	c->state = 1;
	snprintf(copy, sizeof copy, "%s", spec);
	for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		double v;

		if (eq == NULL)
			goto bad;
		*eq = '\0';
		errno = 0;
		v = strtod(eq + 1, &end);
		if (errno != 0 || *end != '\0' || end == eq + 1 || v < 0)
			goto bad;
		if (strcmp(item, "seed") == 0)
			c->state = (uint64_t) v;
		else if (strcmp(item, "slow_ms") == 0)
			c->slow_ms = (int64_t) v;
		else if (v > 1)
			goto bad;
		else if (strcmp(item, "fail") == 0)
			c->fail = v;
		else if (strcmp(item, "drop") == 0)
			c->drop = v;
		else if (strcmp(item, "drop_after_apply") == 0)
			c->drop_after_apply = v;
		else if (strcmp(item, "slow") == 0)
			c->slow = v;
		else
			goto bad;
	}
	return true;
bad:
	snprintf(why, whylen, "--chaos wants seed=S,fail=P,drop=P,drop_after_apply=P,slow=P,slow_ms=N "
	         "(P from 0 to 1): %s", spec);
	return false;
}

/* True with probability p (splitmix64: the same seed, the same draws). */
static bool
chaos_draw(struct chaos *c, double p)
{
	uint64_t z;

	if (p <= 0)
		return false;
	z = (c->state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (double) (z >> 11) / (double) (1ULL << 53) < p;
}

/* ---- the applied keys (--dedupe) ---- */

struct keyset {
	char **slots;
	size_t cap, count;
};

static uint64_t
key_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char) s[i]) * 1099511628211ULL;
	return h;
}

static char **
keyset_find(struct keyset *ks, const char *s, size_t n)
{
	size_t i = (size_t) key_hash(s, n) & (ks->cap - 1);

	while (ks->slots[i] != NULL && !(strlen(ks->slots[i]) == n && memcmp(ks->slots[i], s, n) == 0))
		i = (i + 1) & (ks->cap - 1);
	return &ks->slots[i];
}

static bool
keyset_has(struct keyset *ks, const char *s, size_t n)
{
	return ks->cap != 0 && *keyset_find(ks, s, n) != NULL;
}

static void
keyset_add(struct keyset *ks, const char *s, size_t n)
{
	char **slot;

	if ((ks->count + 1) * 2 > ks->cap) {
		struct keyset bigger = {calloc(ks->cap != 0 ? ks->cap * 2 : 1024, sizeof(char *)),
		                        ks->cap != 0 ? ks->cap * 2 : 1024, ks->count};

		if (bigger.slots == NULL)
			abort();
		for (size_t i = 0; i < ks->cap; i++)
			if (ks->slots[i] != NULL)
				*keyset_find(&bigger, ks->slots[i], strlen(ks->slots[i])) = ks->slots[i];
		free(ks->slots);
		*ks = bigger;
	}
	slot = keyset_find(ks, s, n);
	if (*slot == NULL) {
		if ((*slot = strndup(s, n)) == NULL)
			abort();
		ks->count++;
	}
}

static void
keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->cap; i++)
		free(ks->slots[i]);
	free(ks->slots);
	memset(ks, 0, sizeof *ks);
}

/* ---- connections ---- */

enum conn_state {
	C_READ,    /* reading a request */
	C_WAIT,    /* the answer is ready, held until answer_at */
	C_WRITE,   /* writing the answer */
	C_HUNG,    /* never answered: reads and discards until the client leaves */
};

struct conn {
	int fd;
	long id;
	enum conn_state state;
	struct buf in;           /* received, from the current request's first byte */
	size_t head_len;         /* request line + headers + blank line, 0 until complete */
	size_t body_len;         /* Content-Length */
	bool continue_sent;      /* "100 Continue" answered an Expect */
	struct buf out;          /* to send, from out_off */
	size_t out_off;
	uint64_t pad_left;       /* 'x' bytes to send after out */
	int64_t answer_at;       /* C_WAIT: monotonic ms */
	bool close_after;        /* close once the answer is sent */
	bool closed;             /* to be freed at the end of the loop turn */
};

static struct {
	int listen_fd;           /* -1 while down */
	int port;
	const char *port_file;
	int log_fd;              /* -1: no log */
	struct mode mode, before_down;
	bool dedupe;
	struct keyset applied;
	bool chaos_on;
	struct chaos chaos;
	int64_t delay_ms;
	struct conn **conns;
	size_t nconns, cap;
	long next_id;
	int64_t relisten_at;     /* up but not yet listening (bind failed): retry then */
	int64_t accept_pause_until;   /* out of descriptors: accept again then */
	bool stdin_open;
	struct buf stdin_line;
	struct pollfd *pfds;
	size_t pfds_cap;
} stub = {.listen_fd = -1, .log_fd = -1, .relisten_at = -1};

static volatile sig_atomic_t stub_got_usr1, stub_got_term;

static void
stub_on_signal(int sig)
{
	if (sig == SIGUSR1)
		stub_got_usr1 = 1;
	else
		stub_got_term = 1;
}

static int64_t
now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A line on stdout, flushed: what the tests wait for. */
static void
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static const char *
reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* ---- listening ---- */

static void
stub_write_port_file(void)
{
	char tmp[4096];
	FILE *f;

	if (stub.port_file == NULL)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", stub.port_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%d\n", stub.port) < 0 || fclose(f) != 0 || rename(tmp, stub.port_file) != 0) {
		fprintf(stderr, "http-stub: %s: %s\n", stub.port_file, strerror(errno));
		exit(1);
	}
}

/* Listens on 127.0.0.1:stub.port (0: the kernel picks, and stub.port is
 * set). False with errno on failure. */
static bool
stub_listen(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) stub.port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, saved;

	if (fd < 0)
		return false;
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(fd, 4096) != 0
	    || getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return false;
	}
	stub.listen_fd = fd;
	stub.port = ntohs(sa.sin_port);
	return true;
}

static void
conn_close(struct conn *c)
{
	if (!c->closed) {
		close(c->fd);
		c->closed = true;
	}
}

/* Down: nothing listens and nothing stays connected. Up: listen again on
 * the same port (retried every 50 ms if another socket holds it). */
static void
stub_set_down(bool down)
{
	if (down) {
		if (stub.listen_fd >= 0)
			close(stub.listen_fd);
		stub.listen_fd = -1;
		stub.relisten_at = -1;
		for (size_t i = 0; i < stub.nconns; i++)
			conn_close(stub.conns[i]);
		say("down");
	} else if (stub.listen_fd < 0) {
		if (stub_listen()) {
			stub.relisten_at = -1;
			say("up");
		} else {
			if (stub.relisten_at < 0)
				fprintf(stderr, "http-stub: listen on port %d: %s; trying again\n", stub.port, strerror(errno));
			stub.relisten_at = now_ms(CLOCK_MONOTONIC) + 50;
		}
	}
}

static void
stub_set_mode(const struct mode *m)
{
	bool was_down = stub.mode.kind == M_DOWN;

	if (m->kind == M_DOWN && !was_down)
		stub.before_down = stub.mode;
	stub.mode = *m;
	if (m->kind == M_DOWN && !was_down)
		stub_set_down(true);
	else if (m->kind != M_DOWN && was_down)
		stub_set_down(false);
	say("mode %s", m->text);
}

static void
stub_accept(void)
{
	for (;;) {
		int fd = accept4(stub.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				fprintf(stderr, "http-stub: accept: %s; pausing 100 ms\n", strerror(errno));
				stub.accept_pause_until = now_ms(CLOCK_MONOTONIC) + 100;
			}
			return;
		}
		(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if ((c = calloc(1, sizeof *c)) == NULL)
			abort();
		c->fd = fd;
		c->id = ++stub.next_id;
		if (stub.nconns == stub.cap) {
			stub.cap = stub.cap != 0 ? stub.cap * 2 : 64;
			if ((stub.conns = realloc(stub.conns, stub.cap * sizeof *stub.conns)) == NULL)
				abort();
		}
		stub.conns[stub.nconns++] = c;
	}
}

/* ---- requests ---- */

/* The request's parts, pointing into the connection's input. */
struct request {
	const char *method, *target;
	size_t method_len, target_len;
	const char *headers;          /* the first header line */
	size_t headers_len;           /* up to the blank line */
	const char *key, *attempt;    /* Idempotency-Key, X-Pgdispatch-Attempt, NULL if absent */
	size_t key_len, attempt_len;
	bool keep_alive;
};

/* Calls fn(name, value) for each header line of r (obs-fold not
 * supported: a line starting with white space is skipped). */
static void
request_headers(const struct request *r, void (*fn)(const char *, size_t, const char *, size_t, void *), void *arg)
{
	const char *p = r->headers, *end = r->headers + r->headers_len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t) (end - p)), *colon, *v, *ve;

		if (eol == NULL)
			eol = end;
		ve = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		colon = memchr(p, ':', (size_t) (ve - p));
		if (colon != NULL && colon > p && *p != ' ' && *p != '\t') {
			for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
				;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			fn(p, (size_t) (colon - p), v, (size_t) (ve - v), arg);
		}
		p = eol + 1;
	}
}

/* What the head says about framing, and the two headers the log names. */
struct head_facts {
	struct request *r;
	bool bad_length, chunked, expect_continue, close, keep_alive;
	uint64_t length;
};

static bool
header_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static bool
value_has(const char *v, size_t n, const char *token)
{
	size_t t = strlen(token);

	for (size_t i = 0; i + t <= n; i++)
		if (strncasecmp(v + i, token, t) == 0)
			return true;
	return false;
}

static void
head_fact(const char *name, size_t n, const char *v, size_t vn, void *arg)
{
	struct head_facts *f = arg;

	if (header_is(name, n, "content-length")) {
		uint64_t len;

		if (!parse_u64(v, vn, &len) || (f->length != UINT64_MAX && f->length != len))
			f->bad_length = true;
		else
			f->length = len;
	} else if (header_is(name, n, "transfer-encoding"))
		f->chunked = true;
	else if (header_is(name, n, "expect"))
		f->expect_continue = value_has(v, vn, "100-continue");
	else if (header_is(name, n, "connection")) {
		f->close |= value_has(v, vn, "close");
		f->keep_alive |= value_has(v, vn, "keep-alive");
	} else if (header_is(name, n, "idempotency-key")) {
		f->r->key = v;
		f->r->key_len = vn;
	} else if (header_is(name, n, "x-pgdispatch-attempt")) {
		f->r->attempt = v;
		f->r->attempt_len = vn;
	}
}

static void
log_header(const char *name, size_t n, const char *v, size_t vn, void *arg)
{
	struct buf *line = arg;
	char lower[256];

	if (n >= sizeof lower)
		n = sizeof lower - 1;
	for (size_t i = 0; i < n; i++)
		lower[i] = (char) (name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	if (line->data[line->len - 1] != '{')
		buf_add(line, ",", 1);
	json_str(line, lower, n);
	buf_add(line, ":", 1);
	json_str(line, v, vn);
}

static void
stub_log(const struct conn *c, const struct request *r, const char *body, size_t body_len, bool applied, int status)
{
	struct buf line = {0};
	const char *p;
	size_t left;
	ssize_t n;

	if (stub.log_fd < 0)
		return;
	buf_printf(&line, "{\"t_ms\":%lld,\"conn\":%ld,\"method\":", (long long) now_ms(CLOCK_REALTIME), c->id);
	json_str(&line, r->method, r->method_len);
	buf_add(&line, ",\"path\":", 8);
	json_str(&line, r->target, r->target_len);
	buf_add(&line, ",\"idempotency_key\":", 19);
	if (r->key != NULL)
		json_str(&line, r->key, r->key_len);
	else
		buf_add(&line, "null", 4);
	buf_add(&line, ",\"attempt\":", 11);
	if (r->attempt != NULL)
		json_str(&line, r->attempt, r->attempt_len);
	else
		buf_add(&line, "null", 4);
	buf_add(&line, ",\"body\":", 8);
	if (body_len > 0 && json_valid(body, body_len)) {
		/* Valid JSON has line breaks only between tokens: as spaces,
		 * the line stays one line. */
		size_t at = line.len;

		buf_add(&line, body, body_len);
		for (size_t i = at; i < line.len; i++)
			if (line.data[i] == '\n' || line.data[i] == '\r')
				line.data[i] = ' ';
	} else
		buf_add(&line, "null", 4);
	buf_printf(&line, ",\"body_len\":%zu,\"headers\":{", body_len);
	request_headers(r, log_header, &line);
	buf_printf(&line, "},\"applied\":%s,\"status\":", applied ? "true" : "false");
	if (status != 0)
		buf_printf(&line, "%d}\n", status);
	else
		buf_add(&line, "null}\n", 6);
	for (p = line.data, left = line.len; left > 0; p += n, left -= (size_t) n)
		if ((n = write(stub.log_fd, p, left)) < 0) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			fprintf(stderr, "http-stub: log: %s\n", strerror(errno));
			exit(1);
		}
	buf_free(&line);
}

/* Queues an answer: head, then body (or pad 'x' bytes), held delay ms. */
static void
conn_answer(struct conn *c, const struct request *r, int status, const char *type, const char *body, size_t body_len,
            uint64_t pad, const char *retry_after, int64_t delay)
{
	bool head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
	bool no_body = status == 204 || status == 304;

	buf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (!no_body) {
		buf_printf(&c->out, "Content-Type: %s\r\nContent-Length: %llu\r\n", type,
		           (unsigned long long) (body_len + pad));
	}
	if (retry_after != NULL && retry_after[0] != '\0')
		buf_printf(&c->out, "Retry-After: %s\r\n", retry_after);
	if (status >= 300 && status < 400)
		buf_printf(&c->out, "Location: /redirected-by-stub\r\n");
	if (c->close_after)
		buf_printf(&c->out, "Connection: close\r\n");
	buf_add(&c->out, "\r\n", 2);
	if (!no_body && !head_only) {
		buf_add(&c->out, body, body_len);
		c->pad_left = pad;
	}
	if (delay > 0) {
		c->state = C_WAIT;
		c->answer_at = now_ms(CLOCK_MONOTONIC) + delay;
	} else
		c->state = C_WRITE;
}

/* A request the stub cannot take (bad framing, too large): answered, logged
 * with what is known, and the connection closed after. */
static void
conn_refuse(struct conn *c, struct request *r, int status, const char *why)
{
	c->close_after = true;
	stub_log(c, r, NULL, 0, false, status);
	conn_answer(c, r, status, "text/plain", why, strlen(why), 0, NULL, 0);
}

/* The whole request is in: decide its fate (see the file's comment for the
 * order), log it, queue the answer. */
static void
conn_handle(struct conn *c, struct request *r)
{
	const char *body = c->in.data + c->head_len;
	const struct mode *m = &stub.mode;
	int64_t delay = stub.delay_ms;
	bool applied = false, drop_after = false;
	char text[128], *echo = NULL;
	const char *type = "text/plain", *out = NULL;
	size_t out_len = 0;
	uint64_t pad = 0;
	int status = 0;

	if (!r->keep_alive)
		c->close_after = true;
	if (m->kind == M_HANG) {
		stub_log(c, r, body, c->body_len, false, 0);
		c->state = C_HUNG;
		return;
	}
	if (m->kind == M_CLOSE || (stub.chaos_on && chaos_draw(&stub.chaos, stub.chaos.drop))) {
		stub_log(c, r, body, c->body_len, false, 0);
		conn_close(c);
		return;
	}
	if (stub.dedupe && r->key != NULL && keyset_has(&stub.applied, r->key, r->key_len)) {
		status = 200, type = "application/json", out = "{\"ok\":true,\"duplicate\":true}";
	} else if (stub.chaos_on && chaos_draw(&stub.chaos, stub.chaos.fail)) {
		status = 503, out = "stub: chaos says fail";
	} else {
		switch (m->kind) {
		case M_OK:
			status = 200, type = "application/json", out = "{\"ok\":true}";
			break;
		case M_TEXT:
			status = 200, out = "hello";
			break;
		case M_EMPTY:
			status = 204;
			break;
		case M_FLOOD:
			status = 200, pad = m->bytes;
			break;
		case M_ECHO:
			status = 500;
			echo = strndup(c->in.data, c->head_len);
			if (echo == NULL)
				abort();
			out = echo;
			break;
		case M_STATUS:
			status = m->status;
			if (m->has_body_bytes)
				pad = m->bytes;
			else {
				snprintf(text, sizeof text, "stub: status %d on purpose", status);
				out = text;
			}
			break;
		case M_HANG:
		case M_CLOSE:
		case M_DOWN:   /* nothing is connected while down */
			abort();
		}
		applied = status >= 200 && status < 300;
		if (applied && stub.dedupe && r->key != NULL)
			keyset_add(&stub.applied, r->key, r->key_len);
		drop_after = applied && stub.chaos_on && chaos_draw(&stub.chaos, stub.chaos.drop_after_apply);
	}
	if (stub.chaos_on && chaos_draw(&stub.chaos, stub.chaos.slow))
		delay += stub.chaos.slow_ms;
	stub_log(c, r, body, c->body_len, applied, drop_after ? 0 : status);
	if (drop_after)
		conn_close(c);
	else {
		if (out != NULL)
			out_len = strlen(out);
		conn_answer(c, r, status, type, out, out_len, pad,
		            m->kind == M_STATUS && status == m->status ? m->retry_after : NULL, delay);
	}
	free(echo);
}

/* Parses what c->in holds; handles a request once it is whole. */
static void
conn_parse(struct conn *c)
{
	struct request r = {0};
	struct head_facts f = {.r = &r, .length = UINT64_MAX};
	const char *in = c->in.data, *sp1, *sp2, *eol;
	bool http10;

	if (c->in.len == 0)
		return;
	if (c->head_len == 0) {
		const char *end = memmem(in, c->in.len, "\r\n\r\n", 4);

		if (end == NULL) {
			if (c->in.len > STUB_MAX_HEAD) {
				r.method = r.target = r.headers = "";
				conn_refuse(c, &r, 431, "stub: request head too large");
			}
			return;
		}
		c->head_len = (size_t) (end - in) + 4;
	}
	/* The request line: METHOD SP TARGET SP HTTP/x.y */
	eol = memmem(in, c->head_len, "\r\n", 2);
	sp1 = memchr(in, ' ', (size_t) (eol - in));
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t) (eol - sp1 - 1)) : NULL;
	r.method = in;
	r.method_len = sp1 != NULL ? (size_t) (sp1 - in) : (size_t) (eol - in);
	r.target = sp1 != NULL ? sp1 + 1 : "";
	r.target_len = sp2 != NULL ? (size_t) (sp2 - sp1 - 1) : 0;
	r.headers = eol + 2;
	r.headers_len = c->head_len - (size_t) (eol + 2 - in) - 2;
	if (sp2 == NULL || eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || r.method_len == 0) {
		conn_refuse(c, &r, 400, "stub: bad request line");
		return;
	}
	http10 = sp2[8] == '0';
	request_headers(&r, head_fact, &f);
	r.keep_alive = !f.close && (!http10 || f.keep_alive);
	if (f.bad_length) {
		conn_refuse(c, &r, 400, "stub: bad Content-Length");
		return;
	}
	if (f.chunked) {
		conn_refuse(c, &r, 501, "stub: chunked requests are not supported");
		return;
	}
	if (f.length != UINT64_MAX && f.length > STUB_MAX_BODY) {
		conn_refuse(c, &r, 413, "stub: request body too large");
		return;
	}
	c->body_len = f.length == UINT64_MAX ? 0 : (size_t) f.length;
	if (c->in.len < c->head_len + c->body_len) {
		if (f.expect_continue && !c->continue_sent) {
			buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			c->continue_sent = true;
		}
		return;
	}
	conn_handle(c, &r);
}

/* The answer is out: drop the request from the input and go on with the
 * next one (pipelined) or wait for it. */
static void
conn_next(struct conn *c)
{
	size_t used = c->head_len + c->body_len;

	if (c->close_after) {
		conn_close(c);
		return;
	}
	memmove(c->in.data, c->in.data + used, c->in.len - used);
	c->in.len -= used;
	c->head_len = c->body_len = 0;
	c->continue_sent = false;
	c->state = C_READ;
	conn_parse(c);
}

/* Room for reading: a whole request (head, body) plus some. */
static size_t
conn_read_room(struct conn *c)
{
	size_t want;

	if (c->state == C_READ) {
		want = c->head_len != 0 ? c->head_len + c->body_len : STUB_MAX_HEAD + 4;
		want = (want > c->in.len ? want - c->in.len : 0) + STUB_READ_ROOM;
		if (want > 4 * 1024 * 1024)
			want = 4 * 1024 * 1024;
		buf_reserve(&c->in, want);
	}
	/* Elsewhere (a pipelined request behind an answer) only what fits:
	 * a client cannot make it grow without bound. */
	return c->in.cap > c->in.len + 1 ? c->in.cap - c->in.len - 1 : 0;
}

static void
conn_read(struct conn *c, short revents)
{
	static char discard[STUB_READ_ROOM];
	size_t room;
	ssize_t n;

	if (c->state == C_HUNG) {
		while ((n = recv(c->fd, discard, sizeof discard, 0)) > 0)
			;
	} else {
		room = conn_read_room(c);
		if (room == 0) {
			/* Full, yet the client is gone: nothing will drain it. */
			if (revents & (POLLHUP | POLLERR)) {
				say("closed conn=%ld by=peer", c->id);
				conn_close(c);
			}
			return;
		}
		n = recv(c->fd, c->in.data + c->in.len, room, 0);
		if (n > 0) {
			c->in.len += (size_t) n;
			c->in.data[c->in.len] = '\0';
			if (c->state == C_READ)
				conn_parse(c);
			return;
		}
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		say("closed conn=%ld by=peer", c->id);
		conn_close(c);
	}
}

static void
conn_write(struct conn *c)
{
	static char pad[STUB_PAD_CHUNK];
	ssize_t n;

	if (pad[0] != 'x')
		memset(pad, 'x', sizeof pad);
	while (c->out_off < c->out.len) {
		n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			goto failed;
		c->out_off += (size_t) n;
	}
	c->out.len = c->out_off = 0;
	if (c->state != C_WRITE)
		return;   /* a "100 Continue" before the body */
	while (c->pad_left > 0) {
		n = send(c->fd, pad, c->pad_left < sizeof pad ? (size_t) c->pad_left : sizeof pad, MSG_NOSIGNAL);
		if (n < 0)
			goto failed;
		c->pad_left -= (uint64_t) n;
	}
	conn_next(c);
	return;
failed:
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		say("closed conn=%ld by=peer", c->id);
		conn_close(c);
	}
}

static short
conn_events(struct conn *c)
{
	short ev = 0;
	bool sending = c->out_off < c->out.len || (c->state == C_WRITE);

	if (c->state == C_READ || c->state == C_HUNG || c->in.cap > c->in.len + 1)
		ev |= POLLIN;
	if (sending && c->state != C_WAIT)
		ev |= POLLOUT;
	return ev;
}

static void
conn_free(struct conn *c)
{
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* ---- stdin: mode changes ---- */

static void
stub_command(char *line)
{
	struct mode m;
	char why[512];

	if (strncmp(line, "mode ", 5) != 0) {
		say("bad line %s (want: mode M)", line);
		return;
	}
	if (!mode_parse(line + 5, &m, why, sizeof why)) {
		say("bad line %s", why);
		return;
	}
	stub_set_mode(&m);
}

static void
stub_read_stdin(void)
{
	char chunk[4096], *nl;
	ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);

	if (n <= 0) {
		if (n == 0 || errno != EINTR)
			stub.stdin_open = false;
		return;
	}
	buf_add(&stub.stdin_line, chunk, (size_t) n);
	while ((nl = memchr(stub.stdin_line.data, '\n', stub.stdin_line.len)) != NULL) {
		size_t len = (size_t) (nl - stub.stdin_line.data);

		*nl = '\0';
		if (len > 0 && stub.stdin_line.data[len - 1] == '\r')
			stub.stdin_line.data[len - 1] = '\0';
		stub_command(stub.stdin_line.data);
		memmove(stub.stdin_line.data, nl + 1, stub.stdin_line.len - len - 1);
		stub.stdin_line.len -= len + 1;
	}
}

/* ---- the loop ---- */

static int
stub_timeout(int64_t now)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < stub.nconns; i++)
		if (stub.conns[i]->state == C_WAIT && stub.conns[i]->answer_at < next)
			next = stub.conns[i]->answer_at;
	if (stub.relisten_at >= 0 && stub.relisten_at < next)
		next = stub.relisten_at;
	if (stub.accept_pause_until > now && stub.accept_pause_until < next)
		next = stub.accept_pause_until;
	if (next == INT64_MAX)
		return -1;
	return next <= now ? 0 : (int) (next - now > 60000 ? 60000 : next - now);
}

static void
stub_loop(void)
{
	sigset_t during;

	sigemptyset(&during);
	while (!stub_got_term) {
		int64_t now = now_ms(CLOCK_MONOTONIC);
		size_t n = 0, base;
		int timeout = stub_timeout(now), rc;
		bool listening;

		if (stub.pfds_cap < stub.nconns + 2) {
			stub.pfds_cap = (stub.nconns + 2) * 2;
			if ((stub.pfds = realloc(stub.pfds, stub.pfds_cap * sizeof *stub.pfds)) == NULL)
				abort();
		}
		stub.pfds[n++] = (struct pollfd) {.fd = stub.stdin_open ? STDIN_FILENO : -1, .events = POLLIN};
		listening = stub.listen_fd >= 0 && stub.accept_pause_until <= now;
		stub.pfds[n++] = (struct pollfd) {.fd = listening ? stub.listen_fd : -1, .events = POLLIN};
		base = n;
		for (size_t i = 0; i < stub.nconns; i++)
			stub.pfds[n++] = (struct pollfd) {.fd = stub.conns[i]->fd, .events = conn_events(stub.conns[i])};
		{
			struct timespec ts = {timeout / 1000, (long) (timeout % 1000) * 1000000L};

			/* SIGUSR1 and SIGTERM are blocked but here: no signal
			 * is lost between the check and the wait. */
			rc = ppoll(stub.pfds, n, timeout < 0 ? NULL : &ts, &during);
		}
		if (rc < 0 && errno != EINTR) {
			fprintf(stderr, "http-stub: poll: %s\n", strerror(errno));
			exit(1);
		}
		if (stub_got_usr1) {
			stub_got_usr1 = 0;
			if (stub.mode.kind == M_DOWN)
				stub_set_mode(&stub.before_down);
			else {
				struct mode down;
				char why[64];

				(void) mode_parse("down", &down, why, sizeof why);
				stub_set_mode(&down);
			}
		}
		if (rc < 0)
			continue;
		/* stdin first: a mode written before a request was sent
		 * applies to it. */
		if (stub.pfds[0].revents != 0)
			stub_read_stdin();
		if (stub.pfds[1].revents != 0 && stub.listen_fd >= 0)
			stub_accept();
		now = now_ms(CLOCK_MONOTONIC);
		if (stub.relisten_at >= 0 && stub.relisten_at <= now)
			stub_set_down(false);
		for (size_t i = 0; i < stub.nconns && base + i < n; i++) {
			struct conn *c = stub.conns[i];
			short rev = stub.pfds[base + i].revents;

			if (c->closed)
				continue;
			if (rev & (POLLIN | POLLHUP | POLLERR))
				conn_read(c, rev);
			if (!c->closed && c->state == C_WAIT && c->answer_at <= now)
				c->state = C_WRITE;
			/* Optimistic: a fresh answer goes out in this turn. A held
			 * one waits whole, with any "100 Continue" before it. */
			if (!c->closed && c->state != C_WAIT && (c->out_off < c->out.len || c->state == C_WRITE))
				conn_write(c);
		}
		/* Freed at the end of the turn: pfds indexes stay valid above. */
		for (size_t i = 0; i < stub.nconns;) {
			if (stub.conns[i]->closed) {
				conn_free(stub.conns[i]);
				stub.conns[i] = stub.conns[--stub.nconns];
			} else
				i++;
		}
	}
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: http-stub [--port N] [--port-file PATH] [--log PATH] [--mode M] [--dedupe]\n"
	           "                 [--chaos seed=S,fail=P,drop=P,drop_after_apply=P,slow=P,slow_ms=N] [--delay-ms N]\n"
	           "modes: ok, status=N[,body=BYTES][,retry_after=V], text, empty, hang, close, flood=BYTES, echo, down\n"
	           "stdin: \"mode M\" lines; SIGUSR1 toggles down\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'}, {"port-file", required_argument, NULL, 'f'},
		{"log", required_argument, NULL, 'l'},  {"mode", required_argument, NULL, 'm'},
		{"dedupe", no_argument, NULL, 'd'},     {"chaos", required_argument, NULL, 'c'},
		{"delay-ms", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sigaction sa = {.sa_handler = stub_on_signal};
	struct rlimit rl;
	sigset_t block;
	char why[512];
	uint64_t v;
	int opt;

	(void) mode_parse("ok", &stub.mode, why, sizeof why);
	stub.before_down = stub.mode;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!parse_u64(optarg, strlen(optarg), &v) || v > 65535)
				goto bad;
			stub.port = (int) v;
			break;
		case 'f':
			stub.port_file = optarg;
			break;
		case 'l':
			stub.log_fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (stub.log_fd < 0) {
				fprintf(stderr, "http-stub: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'm':
			if (!mode_parse(optarg, &stub.mode, why, sizeof why)) {
				fprintf(stderr, "http-stub: %s\n", why);
				return 2;
			}
			break;
		case 'd':
			stub.dedupe = true;
			break;
		case 'c':
			if (!chaos_parse(optarg, &stub.chaos, why, sizeof why)) {
				fprintf(stderr, "http-stub: %s\n", why);
				return 2;
			}
			stub.chaos_on = true;
			break;
		case 'w':
			if (!parse_u64(optarg, strlen(optarg), &v) || v > 86400000)
				goto bad;
			stub.delay_ms = (int64_t) v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	/* Thousands of connections: as many descriptors as allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (!stub_listen()) {
		fprintf(stderr, "http-stub: listen on 127.0.0.1:%d: %s\n", stub.port, strerror(errno));
		return 1;
	}
	if (stub.mode.kind == M_DOWN) {
		/* The port is known, and refuses connections. */
		close(stub.listen_fd);
		stub.listen_fd = -1;
	}
	stub.stdin_open = true;
	say("listening port=%d", stub.port);
	say("mode %s", stub.mode.text);
	stub_write_port_file();
	stub_loop();

	for (size_t i = 0; i < stub.nconns; i++) {
		conn_close(stub.conns[i]);
		conn_free(stub.conns[i]);
	}
	free(stub.conns);
	free(stub.pfds);
	buf_free(&stub.stdin_line);
	keyset_free(&stub.applied);
	if (stub.listen_fd >= 0)
		close(stub.listen_fd);
	if (stub.log_fd >= 0)
		close(stub.log_fd);
	return 0;
bad:
	usage(stderr);
	return 2;
}

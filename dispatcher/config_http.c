/*
 * An HTTP handler's settings in the config file, and a handler's circuit
 * breaker: the headers map (names once each, values with ${VAR} expanded
 * by secrets.h), the url and idempotency_key templates (http_template.h),
 * the CA file, and the checks made once a handler's map is read. The keys
 * themselves are rows of config.c's table of handler keys.
 */
#include "config_parser.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_template.h"
#include "json.h"
#include "secrets.h"

/* Headers the daemon sets on every request itself (handler_http.c): one
 * from the config as well would be sent twice or contradict the body. */
static const char *const config_http_daemon_headers[] = {
	"Content-Type", "Idempotency-Key", "X-Pgdispatch-Attempt", "Host", "Content-Length",
	"Transfer-Encoding", "Expect", NULL
};

/* Handler key k's template (http.url, with url set, or
 * http.idempotency_key), when given, parsed into *tpl. */
static bool
config_template(struct config_parser *p, const struct handler_config *h, int k, bool url,
                const struct config_seen *seen, struct http_template **tpl)
{
	const char *s = *(char *const *) ((const char *) h + config_handler_keys[k].offset);
	char why[256];

	if (s == NULL)
		return true;
	if ((*tpl = http_template_parse(s, url, why, sizeof why)) == NULL)
		return config_parser_error(p, seen[k].value, "handlers.%s.%s: %s", h->kind,
		                           config_handler_keys[k].name, why);
	return true;
}

/* Why path cannot be read as a file, or NULL when it can. Opened without
 * blocking, so a FIFO named by mistake does not hang the load. */
static const char *
config_unreadable(const char *path)
{
	struct stat st;
	const char *why = NULL;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return strerror(errno);
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = strerror(EISDIR);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	close(fd);
	return why;
}

/*
 * What an http handler needs once its map is read: a url, templates that
 * parse, a CA file it can read (a typo there would otherwise fail every
 * request), and no env_passthrough, which is for a program's environment:
 * an http handler runs none, and a token meant for the server belongs in
 * a header as ${VAR}.
 */
bool
config_http_check(struct config_parser *p, struct handler_config *h, const struct config_seen *seen)
{
	const char *why;

	if (strcmp(h->type, config_handler_keys[HK_HTTP].name) != 0)
		return true;
	if (h->http_url == NULL)
		return config_parser_error(p, seen[HK_HTTP].key, "handlers.%s.http: needs url (such as "
		                           "https://api.example.com/tasks/{id})", h->kind);
	if (!config_template(p, h, HK_HTTP_URL, true, seen, &h->http_url_tpl)
	    || !config_template(p, h, HK_HTTP_IDEMPOTENCY_KEY, false, seen, &h->http_idempotency_tpl))
		return false;
	if (h->http_ca_file != NULL && (why = config_unreadable(h->http_ca_file)) != NULL)
		return config_parser_error(p, seen[HK_HTTP_CA_FILE].value, "handlers.%s.http.ca_file: %.128s: %s",
		                           h->kind, h->http_ca_file, why);
	/* libcurl drops only Authorization and Cookie when a redirect leads to
	 * another host; every other configured header would go along. */
	if (h->http_follow_redirects && h->http_headers != NULL && h->http_headers[0] != NULL)
		return config_parser_error(p, seen[HK_HTTP_FOLLOW_REDIRECTS].key, "handlers.%s.http.follow_redirects: "
		                           "not with http.headers (a redirect may name any host, and libcurl would "
		                           "send it the headers: a ${VAR} secret with them)", h->kind);
	if (seen[HK_ENV_PASSTHROUGH].set)
		return config_parser_error(p, seen[HK_ENV_PASSTHROUGH].key, "handlers.%s.env_passthrough: an http "
		                           "handler runs no program (pass a secret as a header: ${VAR})", h->kind);
	return true;
}

/* A breaker needs its threshold; the longest open time cannot be below
 * the first, and rises to it when left at its default. */
bool
config_http_check_breaker(struct config_parser *p, struct handler_config *h, const struct config_seen *seen)
{
	char a[32], b[32];

	if (seen[HK_BREAKER].set && !seen[HK_BREAKER_FAILURES].set)
		return config_parser_error(p, seen[HK_BREAKER].key, "handlers.%s.breaker: needs failures (how many "
		                           "failures within window open it)", h->kind);
	if (h->breaker_open_max_ms >= h->breaker_open_for_ms)
		return true;
	if (!seen[HK_BREAKER_OPEN_MAX].set) {
		h->breaker_open_max_ms = h->breaker_open_for_ms;
		return true;
	}
	config_parser_format_duration(h->breaker_open_max_ms, a, sizeof a);
	config_parser_format_duration(h->breaker_open_for_ms, b, sizeof b);
	return config_parser_error(p, seen[HK_BREAKER_OPEN_MAX].value, "handlers.%s.breaker.open_max: %s is less than "
	                           "breaker.open_for (%s)", h->kind, a, b);
}

/* --- http headers ------------------------------------------------------- */

/* An HTTP token (RFC 9110 5.6.2): what a header name is made of. */
static bool
config_http_token(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
		      || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return false;
	return true;
}

/* The first ${NAME} in v (which secrets_expand() took) whose value holds a
 * line break: the message names the variable to fix, never its value. */
static void
config_break_var(const char *v, char *var, size_t len)
{
	snprintf(var, len, "?");
	for (const char *c = v; *c != '\0'; c++) {
		const char *value;
		size_t n;

		if (c[0] == '$' && c[1] == '$') {
			c++;
			continue;
		}
		if (c[0] != '$' || c[1] != '{')
			continue;
		n = strcspn(c + 2, "}");
		snprintf(var, len, "%.*s", (int) n, c + 2);
		value = getenv(var);
		if (value != NULL && strpbrk(value, "\r\n") != NULL)
			return;
		c += n + 2;
	}
}

/*
 * One header's value (the current event) for "Name: value": a string with
 * ${VAR} expanded. CR and LF would end the header and start another, so
 * they are refused as written and as expanded. Values are secrets: no
 * message quotes one.
 */
static char *
config_header_value(struct config_parser *p, const char *name)
{
	yaml_mark_t at = p->event.start_mark;
	const char *v;
	char why[256], var[160];
	char *out;

	if (p->event.type != YAML_SCALAR_EVENT) {
		config_parser_error(p, at, "%s: expected a string, got %s", name, config_parser_node_name(p->event.type));
		return NULL;
	}
	v = config_parser_scalar(p);
	if (strlen(v) != p->event.data.scalar.length) {
		config_parser_error(p, at, "%s: contains a NUL character", name);
		return NULL;
	}
	if (v[0] == '\0' || config_parser_is_null(p)) {
		config_parser_error(p, at, "%s: must not be empty", name);
		return NULL;
	}
	if (strpbrk(v, "\r\n") != NULL) {
		config_parser_error(p, at, "%s: contains a line break", name);
		return NULL;
	}
	if ((out = secrets_expand(v, why, sizeof why)) == NULL) {
		config_parser_error(p, at, "%s: %s", name, why);
		return NULL;
	}
	if (strpbrk(out, "\r\n") != NULL) {
		config_break_var(v, var, sizeof var);
		config_parser_error(p, at, "%s: the value of ${%s} contains a line break", name, var);
	} else if (out[strspn(out, " \t")] == '\0') {
		/* libcurl drops a header with nothing after its colon. */
		config_parser_error(p, at, "%s: empty once ${VAR} are expanded (a header needs a value)", name);
	} else {
		return out;
	}
	free(out);
	return NULL;
}

/* An http handler's headers map (its MAPPING_START is the current event):
 * names that are tokens, once each (ignoring case, as HTTP does), none
 * that the daemon sets itself. */
bool
config_http_read_headers(struct config_parser *p, char ***out, const char *scope)
{
	size_t n = 0, *lines = NULL;   /* lines[i]: where (*out)[i] was written */
	bool ok = false;

	for (;;) {
		struct json_buf header = {0};
		char name[512], *value, **grown;
		const char *h;
		size_t *grown_lines, len;
		yaml_mark_t at;
		int daemon;

		if (!config_parser_next(p))
			goto done;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			break;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT) {
			config_parser_error(p, at, "%s: expected a header name, got %s", scope,
			                    config_parser_node_name(p->event.type));
			goto done;
		}
		h = config_parser_scalar(p);
		len = strlen(h);
		snprintf(name, sizeof name, "%s.%.100s", scope, h);
		if (!config_http_token(h) || len != p->event.data.scalar.length) {
			config_parser_error(p, at, "%s: '%.64s' is not a header name (letters, digits and "
			                    "!#$%%&'*+-.^_`|~)", scope, h);
			goto done;
		}
		if (config_parser_lookup_case(config_http_daemon_headers, h, &daemon)) {
			config_parser_error(p, at, "%s: set by the daemon on every request (not configurable)", name);
			goto done;
		}
		for (size_t i = 0; i < n; i++)
			if (strncasecmp((*out)[i], h, len) == 0 && (*out)[i][len] == ':') {
				config_parser_error(p, at, "%s: duplicate header (first at line %zu; header names "
				                    "ignore case)", name, lines[i] + 1);
				goto done;
			}
		json_buf_append(&header, h, len);
		json_buf_append(&header, ": ", 2);
		if (!config_parser_next(p) || (value = config_header_value(p, name)) == NULL) {
			json_buf_free(&header);
			goto done;
		}
		json_buf_append(&header, value, strlen(value));
		free(value);
		/* *out always holds what is read so far, so an error frees it. */
		grown = realloc(*out, (n + 2) * sizeof *grown);
		grown_lines = grown != NULL ? realloc(lines, (n + 1) * sizeof *lines) : NULL;
		if (grown != NULL) {
			*out = grown;
			grown[n] = NULL;
		}
		if (grown_lines != NULL)
			lines = grown_lines;
		if (grown == NULL || grown_lines == NULL) {
			json_buf_free(&header);
			config_parser_error(p, at, "out of memory");
			goto done;
		}
		lines[n] = at.line;
		grown[n++] = header.data;
		grown[n] = NULL;
	}
	ok = true;
done:
	free(lines);
	return ok;
}

/*
 * ${VAR} expansion and redaction; see secrets.h.
 *
 * Values shorter than SECRETS_MIN_LEN are not remembered: replacing every
 * "1" or "on" in an error text would garble it and protect nothing, since a
 * value that short is no secret. The values live for the process: a reload
 * that drops or rotates a token leaves the old value redacted, which is
 * what an operator rotating a leaked token wants.
 */
#include "secrets.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "why.h"

#define SECRETS_MIN_LEN 4
#define SECRETS_REDACTED "[redacted]"

static struct {
	char **values;      /* each once */
	size_t *lens;
	size_t n, cap;
} secrets_local;

/* Remembers v unless it is short or known; false when out of memory. */
static bool
secrets_remember(const char *v)
{
	size_t len = strlen(v);

	if (len < SECRETS_MIN_LEN)
		return true;
	for (size_t i = 0; i < secrets_local.n; i++)
		if (strcmp(secrets_local.values[i], v) == 0)
			return true;
	if (secrets_local.n == secrets_local.cap) {
		size_t cap = secrets_local.cap == 0 ? 8 : secrets_local.cap * 2;
		char **values = realloc(secrets_local.values, cap * sizeof *values);
		size_t *lens;

		if (values == NULL)
			return false;
		secrets_local.values = values;
		if ((lens = realloc(secrets_local.lens, cap * sizeof *lens)) == NULL)
			return false;
		secrets_local.lens = lens;
		secrets_local.cap = cap;
	}
	if ((secrets_local.values[secrets_local.n] = strdup(v)) == NULL)
		return false;
	secrets_local.lens[secrets_local.n++] = len;
	return true;
}

/* Expands in into out. */
static bool
secrets_expand_into(struct json_buf *out, const char *in, char *why, size_t whylen)
{
	for (size_t i = 0; in[i] != '\0';) {
		size_t n = strcspn(in + i, "$"), name;
		const char *v;
		char *var;

		json_buf_append(out, in + i, n);
		i += n;
		if (in[i] == '\0')
			break;
		if (in[i + 1] != '{') {   /* "$$" is one '$', any other '$' itself */
			json_buf_append(out, "$", 1);
			i += in[i + 1] == '$' ? 2 : 1;
			continue;
		}
		i += 2;
		name = in[i] >= '0' && in[i] <= '9' ? 0 : strspn(in + i, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                                                 "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (name == 0 || in[i + name] != '}')
			return why_printf(why, whylen, "'${' at byte %zu does not start ${NAME} (NAME: letters, "
			                     "digits and _, not starting with a digit; write $$ for a literal $)", i - 1);
		if ((var = strndup(in + i, name)) == NULL)
			return why_printf(why, whylen, "out of memory");
		v = getenv(var);
		free(var);
		/* The name is printed, never the value. */
		if (v == NULL)
			return why_printf(why, whylen, "${%.*s} is not set in the daemon's environment",
			                     (int) (name > 128 ? 128 : name), in + i);
		if (!secrets_remember(v))
			return why_printf(why, whylen, "out of memory");
		json_buf_append(out, v, strlen(v));
		i += name + 1;
	}
	return true;
}

char *
secrets_expand(const char *in, char *why, size_t whylen)
{
	struct json_buf out = {0};

	json_buf_append(&out, "", 0);   /* an empty result is "", not NULL */
	if (!secrets_expand_into(&out, in, why, whylen)) {
		json_buf_free(&out);
		return NULL;
	}
	return out.data;
}

/*
 * At each byte, the longest remembered value that starts there is
 * replaced, so of two overlapping values the one that starts first wins
 * and a value inside a longer one never leaves the longer one's tail.
 * Bytes no value starts at are copied in runs.
 */
void
secrets_redact(struct json_buf *out, const char *text, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		size_t best = 0;

		for (size_t k = 0; k < secrets_local.n; k++) {
			size_t len = secrets_local.lens[k];

			if (len > best && len <= n - i && text[i] == secrets_local.values[k][0]
			    && memcmp(text + i, secrets_local.values[k], len) == 0)
				best = len;
		}
		if (best == 0)
			continue;
		json_buf_append(out, text + start, i - start);
		json_buf_append(out, SECRETS_REDACTED, sizeof SECRETS_REDACTED - 1);
		i += best - 1;
		start = i + 1;
	}
	json_buf_append(out, text + start, n - start);
}

void
secrets_clear(void)
{
	for (size_t i = 0; i < secrets_local.n; i++)
		free(secrets_local.values[i]);
	free(secrets_local.values);
	free(secrets_local.lens);
	memset(&secrets_local, 0, sizeof secrets_local);
}

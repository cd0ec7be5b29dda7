/* Lookup of the SQL files compiled into the binary. */
#include "embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
embed_sql(const char *name)
{
	char path[256];

	snprintf(path, sizeof path, "sql/%s.sql", name);
	for (size_t i = 0; i < embed_file_count; i++)
		if (strcmp(embed_files[i].path, path) == 0)
			return embed_files[i].text;
	fprintf(stderr, "pgdispatch: bug: %s is not compiled in\n", path);
	abort();
}

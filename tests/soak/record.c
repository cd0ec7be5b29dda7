/*
 * The soak's command handler (tests/soak/run.sh): record LOGFILE RUN
 * appends "task-id attempt run" to LOGFILE and succeeds; RUN names the
 * daemon process that started us ("b3": the third start of daemon b).
 *
 * One short line in one write() to an O_APPEND file, so lines from
 * handlers running at once never interleave. RUN comes as an argument
 * written into each daemon's config, not from the environment, so it
 * reaches us whatever environment the daemon passes on (getppid() would
 * not do: a killed daemon's orphans see 1). C and linked statically rather
 * than a sh script: starting it costs about half as much, and on a 2-core
 * machine process creation is what bounds the soak.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	const char *id = getenv("PGDISPATCH_TASK_ID"), *attempt = getenv("PGDISPATCH_TASK_ATTEMPT");
	char line[256];
	int fd, n;

	if (argc != 3 || id == NULL || attempt == NULL) {
		fprintf(stderr, "usage: record LOGFILE RUN, with PGDISPATCH_TASK_ID and "
		                "PGDISPATCH_TASK_ATTEMPT set\n");
		return 2;
	}
	n = snprintf(line, sizeof line, "%.20s %.10s %.64s\n", id, attempt, argv[2]);
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t) n) != n) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}

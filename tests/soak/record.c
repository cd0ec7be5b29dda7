/*
 * The soak's command handler (tests/soak/run.sh): record LOGFILE RUN
 * [SLEEP_MS] appends "task-id attempt run" to LOGFILE, then sleeps
 * SLEEP_MS milliseconds (default 0) and succeeds; RUN names the daemon
 * process that started us ("b3": the third start of daemon b). The line is
 * written first, so a run whose daemon dies during the sleep is counted.
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
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	const char *id = getenv("PGDISPATCH_TASK_ID"), *attempt = getenv("PGDISPATCH_TASK_ATTEMPT");
	char line[256];
	int fd, n;
	long sleep_ms = argc == 4 ? atol(argv[3]) : 0;

	if (argc < 3 || argc > 4 || id == NULL || attempt == NULL) {
		fprintf(stderr, "usage: record LOGFILE RUN [SLEEP_MS], with PGDISPATCH_TASK_ID and "
		                "PGDISPATCH_TASK_ATTEMPT set\n");
		return 2;
	}
	n = snprintf(line, sizeof line, "%.20s %.10s %.64s\n", id, attempt, argv[2]);
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t) n) != n) {
		perror(argv[1]);
		return 1;
	}
	if (sleep_ms > 0) {
		struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return 0;
}

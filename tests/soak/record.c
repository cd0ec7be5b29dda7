/*
 * The soak's command handler (tests/soak/run.sh): record LOGFILE DAEMON
 * appends "task-id attempt daemon daemon-pid" to LOGFILE and succeeds.
 *
 * One short line in one write() to an O_APPEND file, so lines from
 * handlers running at once never interleave. The daemon's name comes as an
 * argument (each daemon's config names its own), so it reaches us whatever
 * environment the daemon passes on; getppid() is the daemon process that
 * started us, which tells a daemon's incarnations apart. C and linked
 * statically rather than a sh script: starting it costs about half as
 * much, and on a 2-core machine process creation is what bounds the soak.
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
		fprintf(stderr, "usage: record LOGFILE DAEMON, with PGDISPATCH_TASK_ID and "
		                "PGDISPATCH_TASK_ATTEMPT set\n");
		return 2;
	}
	n = snprintf(line, sizeof line, "%.20s %.10s %.64s %d\n", id, attempt, argv[2], (int) getppid());
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t) n) != n) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}

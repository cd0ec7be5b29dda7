/* Signal handlers that wake the loop through a self-pipe; see signals.h. */
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct {
	int pipe[2];
	volatile sig_atomic_t stop, reload, child;
} signals_local = {{-1, -1}, 0, 0, 0};

static void
signals_handler(int sig)
{
	int saved = errno;
	char byte = 0;

	if (sig == SIGTERM || sig == SIGINT)
		signals_local.stop++;
	else if (sig == SIGHUP)
		signals_local.reload++;
	else if (sig == SIGCHLD)
		signals_local.child++;
	/* Non-blocking: a full pipe already means "wake up". */
	(void) !write(signals_local.pipe[1], &byte, 1);
	errno = saved;
}

int
signals_setup(void)
{
	struct sigaction sa;
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};

	if (signals_local.pipe[0] < 0 && pipe2(signals_local.pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = signals_handler;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return -1;
	/* A handler that closes its stdin early must cost us an EPIPE on the
	 * write, not the daemon. */
	signal(SIGPIPE, SIG_IGN);
	return signals_local.pipe[0];
}

struct signals_seen
signals_take(void)
{
	struct signals_seen seen;
	char buf[64];
	sigset_t all, old;

	while (read(signals_local.pipe[0], buf, sizeof buf) > 0)
		;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	seen.stop = signals_local.stop;
	seen.reload = signals_local.reload;
	seen.child = signals_local.child;
	signals_local.stop = signals_local.reload = signals_local.child = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return seen;
}

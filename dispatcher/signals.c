/* Signal handlers that wake the loop through a self-pipe; see signals.h. */
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/*
 * The counters are atomics rather than a blocked-signals section: the
 * daemon's loop is one thread, but libcurl's resolver runs getaddrinfo()
 * on threads of its own (handler_http.c), and the kernel may deliver a
 * signal to one of those, where the loop's sigprocmask() guards nothing.
 */
static struct {
	int pipe[2];
	atomic_int stop, reload, child;
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

	while (read(signals_local.pipe[0], buf, sizeof buf) > 0)
		;
	seen.stop = atomic_exchange(&signals_local.stop, 0);
	seen.reload = atomic_exchange(&signals_local.reload, 0);
	seen.child = atomic_exchange(&signals_local.child, 0);
	return seen;
}

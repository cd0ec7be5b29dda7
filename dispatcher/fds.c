/* Closing inherited descriptors at startup; see fds.h. */
#include "fds.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Without close_range(): every open descriptor, as /proc lists them;
 * false if /proc cannot be read. */
static bool
fds_close_listed(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return false;
	/* Closing others while reading the directory is safe: it lists what
	 * was open when each block was read, and closing a closed fd is a
	 * harmless EBADF. */
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end == '\0' && end != e->d_name && fd > 2 && fd != dirfd(d))
			close((int) fd);
	}
	closedir(d);
	return true;
}

/* Without /proc either (a chroot): every number up to the limit. */
static void
fds_close_all_numbers(void)
{
	struct rlimit rl;
	rlim_t max = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
		max = rl.rlim_cur;
	for (rlim_t fd = 3; fd < max; fd++)
		close((int) fd);
}

void
fds_close_inherited(void)
{
#ifdef SYS_close_range
	/* One call on Linux 5.9 and later; older kernels (ENOSYS) or a
	 * seccomp filter (EPERM) fall through to the slower ways. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	if (!fds_close_listed())
		fds_close_all_numbers();
}

/*
 * Dropping root; see privs.h.
 *
 * The whole daemon drops, at startup, rather than only its handlers (a
 * setuid between fork and exec). The daemon itself needs no privilege: it
 * reads a file, speaks the PostgreSQL protocol and starts programs. A root
 * process parsing YAML and network input for the sake of nothing is the
 * larger risk, and a daemon that drops only in its children would also
 * have to re-check for every handler what the kernel checks once here.
 * The price is paid in files read after startup: the config on SIGHUP, the
 * libpq password file and TLS keys must be readable by the new user. The
 * drop checks the config file now and says so, rather than leave the
 * surprise for the first reload.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

/* The target ids and what a new login of that user would see. */
struct privs_target {
	uid_t uid;
	gid_t gid;
	char name[256];
	char home[1024];
};

static enum privs_result
privs_lookup(const struct config *cfg, struct privs_target *t, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	/* config_load() checked both exist; they can vanish before now. */
	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		snprintf(err, errlen, "%s: user: %s: %s", cfg->path, cfg->user,
		         errno != 0 ? strerror(errno) : "no such user on this host");
		return PRIVS_REFUSED;
	}
	t->uid = pw->pw_uid;
	t->gid = pw->pw_gid;
	snprintf(t->name, sizeof t->name, "%s", pw->pw_name);
	snprintf(t->home, sizeof t->home, "%s", pw->pw_dir);
	if (cfg->group != NULL) {
		errno = 0;
		gr = getgrnam(cfg->group);
		if (gr == NULL) {
			snprintf(err, errlen, "%s: group: %s: %s", cfg->path, cfg->group,
			         errno != 0 ? strerror(errno) : "no such group on this host");
			return PRIVS_REFUSED;
		}
		t->gid = gr->gr_gid;
	}
	return PRIVS_OK;
}

static enum privs_result
privs_failed(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "cannot drop privileges: %s: %s", what, strerror(errno));
	return PRIVS_FAILED;
}

enum privs_result
privs_drop(const struct config *cfg, char *err, size_t errlen)
{
	struct privs_target t;
	enum privs_result rc;

	if (cfg->user == NULL) {
		if (geteuid() == 0)
			log_warn("running as root, and so are the handlers: set user: in %s to drop to an "
			         "unprivileged user", cfg->path);
		return PRIVS_OK;
	}
	if ((rc = privs_lookup(cfg, &t, err, errlen)) != PRIVS_OK)
		return rc;
	if (geteuid() != 0) {
		/* Already the user asked for (a service manager switched for
		 * us): nothing to do, and the same config works both ways. */
		if (getuid() == t.uid && geteuid() == t.uid && getgid() == t.gid && getegid() == t.gid)
			return PRIVS_OK;
		snprintf(err, errlen, "%s: user: switching to %s (uid %d, gid %d) needs root, and the daemon "
		         "runs as uid %d, gid %d; start it as root or remove user: and group:", cfg->path,
		         t.name, (int) t.uid, (int) t.gid, (int) geteuid(), (int) getegid());
		return PRIVS_REFUSED;
	}
	/* Groups first: once the uid is not root, they cannot be changed. */
	if (initgroups(t.name, t.gid) != 0)
		return privs_failed(err, errlen, "initgroups");
	if (setresgid(t.gid, t.gid, t.gid) != 0)
		return privs_failed(err, errlen, "setresgid");
	if (setresuid(t.uid, t.uid, t.uid) != 0)
		return privs_failed(err, errlen, "setresuid");
	/* Trust, but verify: a drop that can be undone is no drop. */
	if (t.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		errno = EPERM;
		return privs_failed(err, errlen, "root could be regained after setresuid");
	}
	if (getuid() != t.uid || geteuid() != t.uid || getgid() != t.gid || getegid() != t.gid) {
		errno = EPERM;
		return privs_failed(err, errlen, "ids differ from the ones set");
	}
	/* What su and runuser set: tools the handlers run (and libpq's
	 * ~/.pgpass) look here, not in root's home. */
	if (setenv("HOME", t.home, 1) != 0 || setenv("USER", t.name, 1) != 0
	    || setenv("LOGNAME", t.name, 1) != 0)
		return privs_failed(err, errlen, "setenv");
	log_info("user=%s uid=%d gid=%d dropped root", t.name, (int) t.uid, (int) t.gid);
	if (access(cfg->path, R_OK) != 0)
		log_warn("config=%s cannot be read as user %s (%s): a reload on SIGHUP will fail and "
		         "keep the running config", cfg->path, t.name, strerror(errno));
	return PRIVS_OK;
}

void
privs_protect(void)
{
	/* Not dumpable: the files under /proc/PID belong to root, and
	 * same-user ptrace is refused. A root drop clears the flag too, but
	 * under systemd's User= the daemon starts unprivileged and never
	 * drops. */
	if (prctl(PR_SET_DUMPABLE, 0) != 0)
		log_warn("cannot protect the daemon's memory from its handlers: %s", strerror(errno));
}

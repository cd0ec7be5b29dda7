/*
 * The daemon's event loop: one poll() around the signal fd, the database
 * connections and the handlers' fds, and the phases that run after it. The
 * work itself lives elsewhere: claims in claimer.c, leases and the reaper
 * in lease.c, outcomes in outbox.c, tasks in flight in slots.c, the LISTEN
 * connection in listener.c, statements on the work connection in work.c,
 * connecting and reconnecting in session.c, periodic tasks in schedule.c.
 * This file owns the order of
 * things, shutdown and reload; it never calls libpq.
 *
 * Startup and every reconnect follow one order: connect, LISTEN, then
 * sweep (claim until a batch comes back short), then wait. LISTEN takes
 * effect at commit, and the sweep's first claim is queued on the work
 * connection only once LISTEN has been sent, so a task inserted after the
 * LISTEN is announced, and one inserted before it is found by the sweep:
 * nothing falls in between (docs/design.md, "Wake-ups"). Notifications are
 * only wake-ups; a safety poll catches anything a lost one missed.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "breaker.h"
#include "claimer.h"
#include "clock.h"
#include "lease.h"
#include "listener.h"
#include "session.h"
#include "log.h"
#include "mem.h"
#include "outbox.h"
#include "registry.h"
#include "retention.h"
#include "schedule.h"
#include "secrets.h"
#include "signals.h"
#include "slots.h"
#include "source.h"
#include "work.h"

#define DAEMON_OUTCOME_WAIT_MS 5000   /* once no handler runs, to write the last outcomes */

static struct {
	struct config *cfg;
	const char *database;        /* -d, overriding cfg->database */
	char instance[CONFIG_INSTANCE_NAME_MAX + 1];   /* instance_name, or the host name */
	char host[256];
	/* instance#pid, the one instance string: tasks.locked_by of this
	 * process's claims, its wake-up registrations, the end of its
	 * connections' application_name, and name#pid of its row in
	 * dispatch.instances. */
	char locked_by[CONFIG_INSTANCE_NAME_MAX + 16];
	int signal_fd;
	bool stopping;
	int64_t stop_deadline_ms;    /* the grace's end */
	bool stop_handlers_sent;
	int64_t idle_since_ms;       /* stopping, and no handler runs since: 0 until then */
} daemon_local;

static int64_t
daemon_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static const char *
daemon_conninfo(void)
{
	return daemon_local.database != NULL ? daemon_local.database : daemon_local.cfg->database;
}

/* Up and serving: the work connection takes statements. */
static bool
daemon_connected(void)
{
	return session_up();
}

/* --- shutdown and reload ---------------------------------------------- */

static void
daemon_begin_stop(int64_t now)
{
	daemon_local.stopping = true;
	claimer_stop();
	schedule_stop();
	breaker_stop();
	daemon_local.stop_deadline_ms = now + daemon_local.cfg->shutdown_grace_ms;
	registry_stopping(now);
	log_info("stopping: no new claims; waiting up to %lld ms for %d running handlers "
	         "(signal again to stop at once)", (long long) daemon_local.cfg->shutdown_grace_ms,
	         slots_running());
}

/* Second signal: kill every handler now and give their tasks back; the
 * loop then writes what it can before it leaves. */
static void
daemon_stop_now(int64_t now)
{
	log_warn("stopping at once: killing %d handlers", slots_running());
	if (!daemon_local.stopping) {
		claimer_stop();
		registry_stopping(now);
	}
	schedule_stop();
	daemon_local.stopping = true;
	daemon_local.stop_handlers_sent = true;
	slots_kill_all();
	daemon_local.idle_since_ms = now;
}

static bool
daemon_str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static bool
daemon_queues_differ(const struct config *a, const struct config *b)
{
	if (a->nqueues != b->nqueues)
		return true;
	for (size_t i = 0; i < a->nqueues; i++)
		if (strcmp(a->queues[i], b->queues[i]) != 0)
			return true;
	return false;
}

/* SIGHUP: read the file again; a bad new config is logged and the old one
 * kept. Running tasks keep the settings they started with. */
static void
daemon_reload(void)
{
	char err[1024];
	struct config *fresh = config_load(daemon_local.cfg->path, err, sizeof err);
	struct config *old = daemon_local.cfg;
	bool reconnect;

	if (fresh == NULL) {
		log_error("reload failed, keeping the running config: %s", err);
		return;
	}
	/* A source's statements were filled at startup from the table as it
	 * was then (source.c). */
	if (!source_configs_same(fresh, old)) {
		log_error("reload refused, keeping the running config: sources change only on restart");
		config_free(fresh);
		return;
	}
	/* The drop at startup is one-way (privs.c). */
	if (daemon_str_differs(fresh->user, old->user) || daemon_str_differs(fresh->group, old->group))
		log_warn("user and group change only on restart; the daemon keeps running as uid %d",
		         (int) geteuid());
	if (daemon_str_differs(fresh->instance_name, old->instance_name))
		log_warn("instance_name changes only on restart: tasks in flight are claimed under "
		         "the current name");
	/* The database cannot change under tasks in flight: their fences
	 * could match another database's rows. */
	if (daemon_str_differs(fresh->database, old->database)) {
		log_warn("database changes only on restart; keeping the current one");
		free(fresh->database);
		fresh->database = old->database != NULL ? mem_strdup(old->database) : NULL;
	}
	reconnect = fresh->notify != old->notify;
	/* A registration names the queues served: re-register from scratch
	 * (at the next short claim) when they change, or leave when notify
	 * goes off. */
	if (reconnect || daemon_queues_differ(fresh, old))
		claimer_forget_registration();
	daemon_local.cfg = fresh;
	claimer_config(fresh);
	breaker_config(fresh);
	/* Schedules added, changed or removed: settle them against the
	 * table again, as at start. */
	schedule_config(fresh);
	config_free(old);
	log_setup(fresh->log_level, fresh->log_format);
	slots_grow(fresh->concurrency);
	log_info("config reloaded from %s", fresh->path);
	/* Connected or on the way: either way the LISTEN side must change. */
	if (reconnect && (daemon_connected() || session_connecting())) {
		session_lost("notify setting changed");
		session_start(fresh->notify, clock_now_ms());
	}
	claimer_sweep(false);
}

/* --- the loop --------------------------------------------------------- */

/* Milliseconds poll() may sleep: until the nearest thing that is due. */
static int
daemon_poll_timeout(int64_t now)
{
	int64_t due = now + 60000;

	if (daemon_connected()) {
		if (!daemon_local.stopping && slots_running() < daemon_local.cfg->concurrency)
			due = daemon_min(due, claimer_next_ms());
		due = daemon_min(due, outbox_next_try_ms());
		due = daemon_min(due, lease_next_ms());
		due = daemon_min(due, registry_next_ms());
		if (!daemon_local.stopping)
			due = daemon_min(due, retention_next_ms());
		if (!daemon_local.stopping)
			due = daemon_min(due, schedule_next_ms());
		due = daemon_min(due, breaker_next_ms());
	} else {
		due = daemon_min(due, session_next_ms());
	}
	if (daemon_local.stopping && !daemon_local.stop_handlers_sent && slots_running() > 0)
		due = daemon_min(due, daemon_local.stop_deadline_ms);
	if (daemon_local.idle_since_ms > 0)
		due = daemon_min(due, daemon_local.idle_since_ms + DAEMON_OUTCOME_WAIT_MS);
	due = slots_next_due(due);
	if (due <= now)
		return 0;
	return (int) daemon_min(due - now, INT_MAX);
}

/* The fds to poll: signals, the connections, the handlers'. */
struct daemon_fds {
	struct pollfd *pfds;
	int n, listen, work, first_up, nup, first_slot;
};

static void
daemon_fds_fill(struct daemon_fds *f)
{
	f->n = 0;
	f->listen = f->work = -1;
	f->pfds = calloc((size_t) (5 + slots_nfds()), sizeof *f->pfds);
	if (f->pfds == NULL)
		abort();
	f->pfds[f->n++] = (struct pollfd){.fd = daemon_local.signal_fd, .events = POLLIN};
	if (listener_socket() >= 0) {
		f->listen = f->n;
		f->pfds[f->n++] = (struct pollfd){.fd = listener_socket(), .events = POLLIN};
	}
	if (work_socket() >= 0) {
		f->work = f->n;
		f->pfds[f->n++] = (struct pollfd){.fd = work_socket(), .events = work_events()};
	}
	f->first_up = f->n;
	f->nup = session_pollfds(f->pfds + f->n);
	f->n += f->nup;
	f->first_slot = f->n;
	f->n += slots_pollfds(f->pfds + f->n);
}

static short
daemon_revents(const struct daemon_fds *f, int at)
{
	return at >= 0 ? f->pfds[at].revents : 0;
}

/* Reads and sends on the work connection; a broken one is let go. */
static void
daemon_work(void)
{
	struct db_error err;

	if (daemon_connected() && !work_on_ready(&err))
		session_lost(err.message);
}

/* The database side of a turn: wake-ups, connections, statements. */
static void
daemon_database(const struct daemon_fds *f, int64_t now)
{
	struct db_error err;
	struct listener_news news;

	if (daemon_revents(f, f->listen) != 0) {
		if (!listener_drain(daemon_local.cfg, slots_runs, &news, &err)) {
			session_lost(err.message);
		} else {
			if (news.claim)
				claimer_sweep(true);
			/* A task of ours was cancelled: renew now, and the
			 * renewal's fence reports the claim lost, which stops
			 * the handler (lease.c, slots_lease_lost()). */
			if (news.cancel)
				lease_reset(now);
		}
	}
	if (session_step(f->pfds + f->first_up, f->nup, now, daemon_local.cfg->notify)) {
		/* Renew first: after a long stall the leases this daemon holds
		 * are the most urgent thing, and its own reaper must see them as
		 * held. The sweep waits for LISTEN (see the top). */
		lease_reset(now);
		registry_reset(now);
		claimer_connected();
		schedule_connected();
		breaker_connected();
	}
	daemon_work();
}

/* The handlers' side of a turn: their fds, exits and deadlines. */
static void
daemon_handlers(const struct daemon_fds *f, int64_t now)
{
	for (int p = f->first_slot; p < f->n; p++)
		if (f->pfds[p].revents != 0)
			slots_on_ready(f->pfds[p].fd, f->pfds[p].revents);
	slots_reap();
	slots_check(now);
	if (daemon_local.stopping && !daemon_local.stop_handlers_sent && now >= daemon_local.stop_deadline_ms
	    && slots_running() > 0) {
		log_warn("shutdown grace over: stopping %d handlers", slots_running());
		daemon_local.stop_handlers_sent = true;
		slots_stop_all(now);
	}
}

/* What is due now: leases first (after a stall, keeping what this daemon
 * holds comes before anything else), then claims, then outcomes that do
 * not ride along with a claim. */
static void
daemon_schedule(int64_t now)
{
	/* A freed slot is room for the next task; reaped tasks are due now,
	 * and so is a schedule's new task. */
	if (slots_take_freed() || lease_take_requeued() || schedule_take_enqueued())
		claimer_sweep(false);
	if (!daemon_connected())
		return;
	lease_tick(daemon_local.cfg, now);
	registry_tick(daemon_local.cfg, slots_running(), now);
	if (!daemon_local.stopping)
		schedule_step(now);
	/* Before claims: they skip what the breakers say is open. */
	breaker_tick(now, !daemon_local.stopping && slots_running() < daemon_local.cfg->concurrency);
	/* The sweep waits for LISTEN to be in effect (see the top). */
	if (!daemon_local.stopping && (!daemon_local.cfg->notify || listener_listening()))
		claimer_step(now);
	outbox_flush(now);
	/* Last: a retention batch waits behind the claims and outcomes queued
	 * above (retention.h). */
	if (!daemon_local.stopping)
		retention_tick(daemon_local.cfg, now);
	daemon_work();
}

/* Stopping: true when the loop may end. */
static bool
daemon_done(int64_t now)
{
	if (!daemon_local.stopping || slots_running() > 0)
		return false;
	if (daemon_local.idle_since_ms == 0)
		daemon_local.idle_since_ms = now;
	/* The registry row goes last, once nothing else is left to write. */
	if (outbox_count() == 0 && (work_pending() == 0 || !daemon_connected()) && registry_leave())
		return true;
	/* Outcomes still to write: keep trying (and reconnecting) a while. */
	if (now >= daemon_local.idle_since_ms + DAEMON_OUTCOME_WAIT_MS) {
		if (outbox_count() > 0)
			log_warn("%zu outcomes could not be written; their leases will expire and "
			         "the tasks run again", outbox_count());
		return true;
	}
	/* Send what was just queued (the registry row's removal): the loop
	 * would otherwise sleep on it until its next timer. */
	daemon_work();
	return false;
}

static void
daemon_names(void)
{
	if (gethostname(daemon_local.host, sizeof daemon_local.host) != 0)
		snprintf(daemon_local.host, sizeof daemon_local.host, "localhost");
	daemon_local.host[sizeof daemon_local.host - 1] = '\0';
	/* config.c keeps instance_name short and printable enough for
	 * application_name; a host name is cut to the same length (the
	 * buffer's size) so the three names stay one. */
	snprintf(daemon_local.instance, sizeof daemon_local.instance, "%.*s", CONFIG_INSTANCE_NAME_MAX,
	         daemon_local.cfg->instance_name != NULL ? daemon_local.cfg->instance_name : daemon_local.host);
	for (char *c = daemon_local.instance; *c != '\0'; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	/* Unique per process: two daemons sharing an instance_name (a rolling
	 * restart, replicas of one deployment) never take each other's
	 * claims or registrations for their own. */
	snprintf(daemon_local.locked_by, sizeof daemon_local.locked_by, "%s#%d", daemon_local.instance,
	         (int) getpid());
}

int
daemon_run(struct config *cfg, const char *database)
{
	daemon_local.cfg = cfg;
	daemon_local.database = database;
	log_setup(cfg->log_level, cfg->log_format);
	daemon_names();
	/* Sources are checked, and their statements filled, before anything
	 * else: one that cannot be served stops the daemon before it touches
	 * a row. Before signals are taken over, so a signal ends a startup
	 * that waits for the server. */
	if (!source_setup_all(cfg, daemon_conninfo())) {
		log_error("a source cannot be served (above); stopping before any row was touched");
		source_free_all();
		return 2;
	}
	daemon_local.signal_fd = signals_setup();
	if (daemon_local.signal_fd < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	session_setup(daemon_conninfo(), daemon_local.locked_by);
	slots_setup(daemon_local.locked_by);
	registry_setup(daemon_local.instance, daemon_local.host, (int) getpid(), clock_now_ms());
	slots_grow(cfg->concurrency);
	claimer_setup(daemon_local.locked_by, daemon_conninfo());
	claimer_config(cfg);
	breaker_setup(daemon_local.locked_by);
	breaker_config(cfg);
	schedule_config(cfg);
	srandom((unsigned) (getpid() ^ clock_now_ms()));
	log_info("instance=%s queues=%zu sources=%zu concurrency=%d schedules=%zu starting", daemon_local.locked_by,
	         cfg->nqueues, source_count(), cfg->concurrency, cfg->nschedules);
	session_start(cfg->notify, clock_now_ms());

	for (;;) {
		struct daemon_fds f;
		struct signals_seen sig;
		int64_t now = clock_now_ms();

		daemon_fds_fill(&f);
		if (poll(f.pfds, (nfds_t) f.n, daemon_poll_timeout(now)) < 0 && errno != EINTR) {
			log_error("poll failed: %s", strerror(errno));
			free(f.pfds);
			return EXIT_FAILURE;
		}
		now = clock_now_ms();
		sig = signals_take();
		if (sig.stop > 0 && (daemon_local.stopping || sig.stop > 1))
			daemon_stop_now(now);
		else if (sig.stop > 0)
			daemon_begin_stop(now);
		if (sig.reload > 0)
			daemon_reload();
		daemon_database(&f, now);
		daemon_handlers(&f, now);
		free(f.pfds);
		daemon_schedule(now);
		if (daemon_done(now))
			break;
	}
	log_info("stopped: attempts ended complete=%llu committed=%llu retry=%llu failed=%llu released=%llu",
	         outbox_ended(OUTCOME_COMPLETE), outbox_ended(OUTCOME_COMMITTED), outbox_ended(OUTCOME_RETRY),
	         outbox_ended(OUTCOME_FAIL), outbox_ended(OUTCOME_RELEASE));
	session_close();
	lease_free();
	schedule_free();
	breaker_free();
	outbox_free();
	slots_free();
	source_free_all();
	config_free(daemon_local.cfg);
	secrets_clear();
	return EXIT_SUCCESS;
}

/*
 * The daemon's event loop: connections, claims, leases, wake-ups, shutdown
 * and reload; see daemon.h. Tasks in flight live in slots.c.
 *
 * Startup and every reconnect follow one order: connect, LISTEN, then
 * sweep (claim until a batch comes back short), then wait. LISTEN takes
 * effect at commit, so a task inserted after it is announced, and one
 * inserted before it is found by the sweep: nothing falls in between
 * (../shared/research/pg-pitfalls.md, 1.1). Notifications are only
 * wake-ups; the table is the truth, and a safety poll catches anything a
 * lost notification would have missed.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "embed.h"
#include "handler_sql.h"
#include "log.h"
#include "mem.h"
#include "notify_queue.h"
#include "outbox.h"
#include "queue.h"
#include "slots.h"
#include "signals.h"

#define DAEMON_RECONNECT_MIN_MS 100
#define DAEMON_RECONNECT_MAX_MS 30000
#define DAEMON_CONTENDED_WAIT_MS 20   /* due rows exist but others hold them: first wait */
#define DAEMON_OUTCOME_WAIT_MS 5000   /* after the grace, to write the last outcomes */

static struct {
	struct config *cfg;
	const char *database;        /* -d, overriding cfg->database */
	char instance[256];          /* locked_by; fixed for the process's life */
	char sleeper[300];           /* instance#pid: this process in dispatch.sleepers */
	PGconn *listen;              /* LISTEN only; never in a transaction */
	PGconn *work;                /* claims, outcomes, leases, the reaper */
	bool connecting;             /* listen and work are on their way up */
	struct db_connecting listen_up, work_up;
	bool listen_up_done, work_up_done;
	int connect_failures;        /* attempts failed since the last success */
	int signal_fd;
	size_t next_queue;           /* round-robin start among queues */
	bool sweep;                  /* claim at once */
	enum {
		DAEMON_AWAKE,            /* not registered for wake-ups */
		DAEMON_REGISTERING,      /* registered, not yet confirmed */
		DAEMON_ASLEEP,           /* registered and confirmed: notifications will come */
	} wake;
	int64_t confirm_wait_ms;     /* next pause while registration is unconfirmed */
	int64_t contended_ms;        /* wait before looking again at rows others hold */
	int64_t next_claim_ms;
	int64_t next_lease_ms;
	int64_t reconnect_at_ms;     /* when disconnected */
	int64_t reconnect_delay_ms;
	bool stopping;
	int64_t stop_deadline_ms;
	bool stop_handlers_sent;
} daemon_local;

static int64_t
daemon_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static bool
daemon_connected(void)
{
	return daemon_local.work != NULL && !daemon_local.connecting;
}

static const char *
daemon_conninfo(void)
{
	return daemon_local.database != NULL ? daemon_local.database : daemon_local.cfg->database;
}

/* --- outcomes --------------------------------------------------------- */

static void daemon_disconnect(const char *why);

/* Writes what handlers finished with (outbox.c); reconnects if the
 * connection turns out to be gone. */
static void
daemon_flush_outcomes(void)
{
	struct db_error err;

	if (daemon_connected()
	    && outbox_flush(daemon_local.work, daemon_local.instance, clock_now_ms(), &err) == OUTBOX_CONN_LOST)
		daemon_disconnect(err.message);
}

/* --- connections ------------------------------------------------------ */

static void
daemon_disconnect(const char *why)
{
	if (daemon_local.listen != NULL)
		PQfinish(daemon_local.listen);
	if (daemon_local.work != NULL)
		PQfinish(daemon_local.work);
	if (daemon_local.connecting)
		daemon_local.connect_failures++;
	daemon_local.listen = daemon_local.work = NULL;
	daemon_local.connecting = false;
	/* Idle SQL handler connections most likely died with the others. */
	sql_pool_close();
	daemon_local.reconnect_at_ms = clock_now_ms() + daemon_local.reconnect_delay_ms;
	log_warn("database connection lost: %s; reconnecting in %lld ms", why,
	         (long long) daemon_local.reconnect_delay_ms);
	daemon_local.reconnect_delay_ms *= 2;
	if (daemon_local.reconnect_delay_ms > DAEMON_RECONNECT_MAX_MS)
		daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MAX_MS;
}

/* Server notices go to our log, not to libpq's stderr default. */
static void
daemon_notice(void *arg, const char *message)
{
	log_info("server says: %s", message);
}

/*
 * Connecting never blocks the loop: against an unreachable host a blocking
 * connect would stall reaping, handler deadlines and signals for up to
 * connect_timeout. daemon_connect_start() starts both connections; the
 * loop polls their sockets and daemon_connect_step() moves them on; once
 * both are up, daemon_connect_finish() LISTENs and prepares. On any failure
 * daemon_disconnect() schedules the next attempt.
 */
static void
daemon_connect_start(void)
{
	char appname[64];
	struct db_error err;
	int64_t now = clock_now_ms();

	/* application_name holds 63 bytes; longer is cut by the server anyway. */
	snprintf(appname, sizeof appname, "pgdispatch %.52s", daemon_local.instance);
	daemon_local.connecting = true;
	daemon_local.listen_up_done = !daemon_local.cfg->notify;
	daemon_local.work_up_done = false;
	if (daemon_local.cfg->notify) {
		daemon_local.listen = db_connect_start(daemon_conninfo(), appname, daemon_local.connect_failures, now,
		                                       &daemon_local.listen_up, &err);
		if (daemon_local.listen == NULL) {
			daemon_disconnect(err.message);
			return;
		}
	}
	daemon_local.work = db_connect_start(daemon_conninfo(), appname, daemon_local.connect_failures, now,
	                                     &daemon_local.work_up, &err);
	if (daemon_local.work == NULL)
		daemon_disconnect(err.message);
}

/* Both connections are up: LISTEN, prepare, then ask for a sweep. */
static void
daemon_connect_finish(void)
{
	char safe[512];
	struct db_error err;
	PGresult *res;

	daemon_local.connecting = false;
	if (daemon_local.listen != NULL) {
		PQsetNoticeProcessor(daemon_local.listen, daemon_notice, NULL);
		res = db_exec(daemon_local.listen, embed_sql("listen"), 0, NULL, &err);
		if (res == NULL) {
			daemon_disconnect(err.message);
			return;
		}
		PQclear(res);
	}
	PQsetNoticeProcessor(daemon_local.work, daemon_notice, NULL);
	if (!queue_prepare(daemon_local.work, &err)) {
		daemon_disconnect(err.message);
		return;
	}
	db_conninfo_safe(daemon_conninfo(), safe, sizeof safe);
	log_info("connected database=\"%s\" listen=%s", safe, daemon_local.listen != NULL ? "yes" : "no");
	daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MIN_MS;
	daemon_local.connect_failures = 0;
	daemon_local.sweep = true;
	daemon_local.wake = DAEMON_AWAKE;
	daemon_local.next_lease_ms = clock_now_ms();
}

/* Moves one connection on when its socket is ready or its time is up. */
static bool
daemon_connect_one(PGconn *conn, struct db_connecting *up, bool *done, short revents, int64_t now)
{
	struct db_error err;

	if (*done || (revents == 0 && now < up->deadline_ms))
		return true;
	switch (db_connect_continue(conn, daemon_conninfo(), up, now, &err)) {
	case DB_CONNECT_DONE:
		*done = true;
		return true;
	case DB_CONNECT_WAITING:
		return true;
	default:
		daemon_disconnect(err.message);
		return false;
	}
}

/* After poll(): revents of the listen and work sockets (0 if not polled). */
static void
daemon_connect_step(short listen_revents, short work_revents, int64_t now)
{
	if (daemon_local.listen != NULL
	    && !daemon_connect_one(daemon_local.listen, &daemon_local.listen_up, &daemon_local.listen_up_done,
	                           listen_revents, now))
		return;
	if (!daemon_connect_one(daemon_local.work, &daemon_local.work_up, &daemon_local.work_up_done,
	                        work_revents, now))
		return;
	if (daemon_local.listen_up_done && daemon_local.work_up_done)
		daemon_connect_finish();
}

/* After a statement failed: reconnect if the connection is gone, else
 * log and let the safety poll try again. */
static void
daemon_statement_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	if (daemon_local.work == NULL || PQstatus(daemon_local.work) != CONNECTION_OK) {
		daemon_disconnect(err->message);
		return;
	}
	log_error("%s failed: %s", what, db_error_text(err, text, sizeof text));
}

/* Drains notifications; any for a queue we serve asks for a sweep. */
static void
daemon_drain_notifications(void)
{
	PGnotify *n;

	if (PQconsumeInput(daemon_local.listen) == 0) {
		char msg[1024];

		db_redact(PQerrorMessage(daemon_local.listen), daemon_conninfo(), msg, sizeof msg);
		daemon_disconnect(msg);
		return;
	}
	while ((n = PQnotifies(daemon_local.listen)) != NULL) {
		for (size_t q = 0; q < daemon_local.cfg->nqueues; q++)
			if (strcmp(n->extra, daemon_local.cfg->queues[q]) == 0) {
				daemon_local.sweep = true;
				daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
			}
		PQfreemem(n);
	}
}

/* --- starting tasks --------------------------------------------------- */

/* A claim came back full: there is a backlog, and this instance will claim
 * again as soon as it has room, so it needs no notifications. */
static void
daemon_wake_busy(void)
{
	struct db_error err;

	if (daemon_local.wake == DAEMON_AWAKE)
		return;
	if (!queue_sleep_unregister(daemon_local.work, daemon_local.sleeper, &err)) {
		daemon_statement_failed("wake-up unregistration", &err);
		return;
	}
	daemon_local.wake = DAEMON_AWAKE;
}

/*
 * Every claim came back short: this instance is about to wait, so it asks
 * producers for notifications, and confirms that no insert which missed
 * the request is still open before it trusts them
 * (migrations/0003_wakeup_only_sleepers.sql). Returns how long it may wait
 * before claiming again on its own: unlimited once confirmed, a short and
 * growing pause until then.
 */
static int64_t
daemon_wake_idle(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct db_error err;
	int confirmed;

	if (daemon_local.wake == DAEMON_ASLEEP)
		return INT64_MAX;
	if (daemon_local.wake == DAEMON_AWAKE) {
		if (!queue_sleep_register(daemon_local.work, daemon_local.sleeper,
		                          (const char *const *) cfg->queues, cfg->nqueues, &err)) {
			daemon_statement_failed("wake-up registration", &err);
			return cfg->poll_interval_ms;
		}
		daemon_local.wake = DAEMON_REGISTERING;
		daemon_local.confirm_wait_ms = DAEMON_CONTENDED_WAIT_MS;
	}
	confirmed = queue_sleep_confirm(daemon_local.work, &err);
	if (confirmed < 0) {
		daemon_statement_failed("wake-up confirmation", &err);
		return cfg->poll_interval_ms;
	}
	if (confirmed) {
		/* One more claim sees whatever the stragglers committed. */
		daemon_local.wake = DAEMON_ASLEEP;
		daemon_local.sweep = true;
		return INT64_MAX;
	}
	{
		int64_t wait = daemon_local.confirm_wait_ms;

		daemon_local.confirm_wait_ms = daemon_min(wait * 2, cfg->poll_interval_ms);
		return wait;
	}
}

/*
 * Claims while there are free slots and batches come back full, one queue
 * after another; then sets the timer to the next due task or the safety
 * poll, whichever is sooner.
 */
static void
daemon_claim(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct queue_claimer who = {daemon_local.instance, cfg->lease_ms};
	const char *full[64];
	struct queue_kinds skip = {full, 0};
	int64_t next = cfg->poll_interval_ms, now;
	bool short_batch_everywhere = true, contended = false, claimed_any = false, full_batch = false;
	struct task *batch;

	daemon_local.sweep = false;
	batch = calloc((size_t) cfg->concurrency, sizeof *batch);
	if (batch == NULL)
		abort();
	for (size_t k = 0; k < cfg->nqueues && daemon_connected(); k++) {
		const char *queue = cfg->queues[(daemon_local.next_queue + k) % cfg->nqueues];

		for (;;) {
			int free_slots = cfg->concurrency - slots_running();
			const struct outcome *done = NULL;
			struct db_error err;
			size_t ndone;
			bool *kept;
			int n;

			if (!daemon_connected())
				break;
			if (free_slots <= 0) {
				short_batch_everywhere = false;
				break;
			}
			skip.count = slots_full_kinds(cfg, full, 64);
			/* Successes waiting in the outbox ride along with the claim:
			 * one commit for both (sql/complete_and_claim.sql). Anything
			 * else is written on its own first. */
			ndone = outbox_completes(&done);
			if (ndone == 0) {
				daemon_flush_outcomes();
				if (!daemon_connected())
					break;
			}
			kept = ndone > 0 ? calloc(ndone, sizeof *kept) : NULL;
			if (ndone > 0 && kept == NULL)
				abort();
			n = queue_claim(daemon_local.work, &who, queue, free_slots, &skip, done, ndone, kept,
			                batch, &err);
			if (n >= 0 && ndone > 0)
				outbox_written(kept);
			free(kept);
			if (n < 0 && ndone > 0 && daemon_connected()
			    && PQstatus(daemon_local.work) == CONNECTION_OK) {
				/* Perhaps the successes were refused, not the claim: let
				 * the outbox write them its careful way, then claim alone. */
				daemon_flush_outcomes();
				continue;
			}
			if (n < 0) {
				daemon_statement_failed("claim", &err);
				break;
			}
			claimed_any = claimed_any || n > 0;
			for (int i = 0; i < n; i++)
				slots_start(cfg, daemon_conninfo(), &batch[i]);
			if (n < free_slots)
				break;
			full_batch = true;
		}
		if (!daemon_connected())
			break;
		if (short_batch_everywhere) {
			struct db_error err;
			int64_t due;

			skip.count = slots_full_kinds(cfg, full, 64);
			due = queue_next_due(daemon_local.work, queue, &skip, &err);
			if (due < 0)
				daemon_statement_failed("next due time", &err);
			else if (due == 0)
				/* Due rows we could not lock: another instance is
				 * claiming them, or a long transaction holds them. Look
				 * again soon, then less and less often. */
				contended = true;
			else if (due < next)
				next = due;
		}
	}
	free(batch);
	if (claimed_any || !contended)
		daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
	if (contended) {
		next = daemon_min(next, daemon_local.contended_ms);
		daemon_local.contended_ms = daemon_min(daemon_local.contended_ms * 2, cfg->poll_interval_ms);
	}
	if (daemon_connected() && cfg->notify) {
		if (full_batch)
			daemon_wake_busy();
		else if (short_batch_everywhere)
			next = daemon_min(next, daemon_wake_idle());
	}
	daemon_local.next_queue++;
	now = clock_now_ms();
	daemon_local.next_claim_ms = now + next;
}

/* --- running tasks ---------------------------------------------------- */

/* Renews the leases of running tasks and reaps others' expired ones. */
static void
daemon_lease_tick(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct queue_claimer who = {daemon_local.instance, cfg->lease_ms};
	struct db_error err;
	long long ids[slots_capacity() + 1];
	int attempts[slots_capacity() + 1];
	bool kept[slots_capacity() + 1];
	int at[slots_capacity() + 1];
	const char *kinds[cfg->nhandlers + 1];
	int limits[cfg->nhandlers + 1];
	struct queue_kinds known = {kinds, cfg->nhandlers};
	size_t n = slots_leased(ids, attempts, at);
	int back;

	if (n > 0) {
		if (!queue_renew(daemon_local.work, &who, ids, attempts, n, kept, &err)) {
			daemon_statement_failed("lease renewal", &err);
			return;
		}
		for (size_t i = 0; i < n; i++)
			if (!kept[i])
				slots_lease_lost(at[i]);
	}
	for (size_t h = 0; h < cfg->nhandlers; h++) {
		kinds[h] = cfg->handlers[h].kind;
		limits[h] = cfg->handlers[h].max_attempts;
	}
	back = queue_reap(daemon_local.work, &known, limits, cfg->max_attempts, &err);
	if (back < 0) {
		daemon_statement_failed("lease reaper", &err);
		return;
	}
	if (back > 0)
		daemon_local.sweep = true;
	/* Checked whether or not this instance listens: producers notify for
	 * other daemons too, and their commits are what a full queue breaks. */
	if (!notify_queue_watch(daemon_local.work, cfg->notify_queue_warn_percent, clock_now_ms(), &err))
		daemon_statement_failed("NOTIFY queue check", &err);
}

/* --- shutdown and reload ---------------------------------------------- */

static void
daemon_begin_stop(int64_t now)
{
	daemon_local.stopping = true;
	/* No more claims: producers need not wake this instance. */
	if (daemon_connected())
		daemon_wake_busy();
	daemon_local.stop_deadline_ms = now + daemon_local.cfg->shutdown_grace_ms;
	log_info("stopping: no new claims; waiting up to %lld ms for %d running handlers "
	         "(signal again to stop at once)", (long long) daemon_local.cfg->shutdown_grace_ms,
	         slots_running());
}

/* Second signal: kill every handler now, give their tasks back, leave. */
static void
daemon_stop_now(void)
{
	log_warn("stopping at once: killing %d handlers", slots_running());
	slots_kill_all();
	daemon_flush_outcomes();
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
	/* The drop at startup is one-way (privs.c). */
	if (daemon_str_differs(fresh->user, old->user) || daemon_str_differs(fresh->group, old->group))
		log_warn("user and group change only on restart; the daemon keeps running as uid %d",
		         (int) geteuid());
	if (daemon_str_differs(fresh->instance_name, old->instance_name))
		log_warn("instance_name changes only on restart: tasks in flight are claimed under "
		         "the current name");
	/* The database cannot change under tasks in flight: their fences
	 * (id, locked_by, attempt) could match another database's rows. */
	if (daemon_str_differs(fresh->database, old->database)) {
		log_warn("database changes only on restart; keeping the current one");
		free(fresh->database);
		fresh->database = old->database != NULL ? mem_strdup(old->database) : NULL;
	}
	reconnect = fresh->notify != old->notify;
	/* A registration names the queues served: re-register from scratch
	 * (at the next short claim) when they change, or leave when notify
	 * goes off. */
	if (daemon_connected() && (reconnect || daemon_queues_differ(fresh, old)))
		daemon_wake_busy();
	daemon_local.cfg = fresh;
	config_free(old);
	log_setup(fresh->log_level, fresh->log_format);
	slots_grow(fresh->concurrency);
	log_info("config reloaded from %s", fresh->path);
	/* Connected or on the way: either way the LISTEN side must change. */
	if (reconnect && daemon_local.work != NULL) {
		daemon_disconnect("notify setting changed");
		daemon_local.reconnect_at_ms = clock_now_ms();
	}
	daemon_local.sweep = true;
}

/* --- the loop --------------------------------------------------------- */

/* Milliseconds poll() may sleep: until the nearest thing that is due. */
static int
daemon_poll_timeout(int64_t now)
{
	int64_t due = now + 60000;

	if (daemon_connected()) {
		if (daemon_local.sweep && !daemon_local.stopping)
			return 0;
		if (outbox_count() > 0)
			due = daemon_min(due, outbox_next_try_ms());
		if (!daemon_local.stopping && slots_running() < daemon_local.cfg->concurrency)
			due = daemon_min(due, daemon_local.next_claim_ms);
		due = daemon_min(due, daemon_local.next_lease_ms);
	} else if (daemon_local.connecting) {
		if (!daemon_local.listen_up_done)
			due = daemon_min(due, daemon_local.listen_up.deadline_ms);
		if (!daemon_local.work_up_done)
			due = daemon_min(due, daemon_local.work_up.deadline_ms);
	} else {
		due = daemon_min(due, daemon_local.reconnect_at_ms);
	}
	/* The grace ends for running handlers only; after them, the last
	 * outcomes get their own wait (the loop in daemon_run). Counting the
	 * grace's end with nothing running made poll() return at once until
	 * that wait was over. */
	if (daemon_local.stopping && !daemon_local.stop_handlers_sent && slots_running() > 0)
		due = daemon_min(due, daemon_local.stop_deadline_ms);
	if (daemon_local.stopping && slots_running() == 0 && outbox_count() > 0)
		due = daemon_min(due, daemon_local.stop_deadline_ms + DAEMON_OUTCOME_WAIT_MS);
	due = slots_next_due(due);
	if (due <= now)
		return 0;
	return (int) daemon_min(due - now, INT_MAX);
}

static void
daemon_instance_name(void)
{
	char host[200];

	if (daemon_local.cfg->instance_name != NULL) {
		snprintf(daemon_local.instance, sizeof daemon_local.instance, "%s", daemon_local.cfg->instance_name);
		return;
	}
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(daemon_local.instance, sizeof daemon_local.instance, "%s:%d", host, (int) getpid());
}

int
daemon_run(struct config *cfg, const char *database)
{
	int pfd_cap;
	struct pollfd *pfds;

	daemon_local.cfg = cfg;
	daemon_local.database = database;
	log_setup(cfg->log_level, cfg->log_format);
	daemon_instance_name();
	snprintf(daemon_local.sleeper, sizeof daemon_local.sleeper, "%s#%d", daemon_local.instance,
	         (int) getpid());
	daemon_local.signal_fd = signals_setup();
	if (daemon_local.signal_fd < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	slots_setup(daemon_local.instance);
	slots_grow(cfg->concurrency);
	daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MIN_MS;
	daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
	srandom((unsigned) (getpid() ^ clock_now_ms()));
	log_info("instance=%s queues=%zu concurrency=%d starting", daemon_local.instance, cfg->nqueues,
	         cfg->concurrency);
	daemon_connect_start();

	for (;;) {
		int64_t now = clock_now_ms();

		struct signals_seen sig;
		const struct outcome *ignored;
		int npfd = 0, listen_at = -1, up_listen_at = -1, up_work_at = -1, first_slot;
		bool claim_now;

		if (slots_take_freed())
			daemon_local.sweep = true;
		pfd_cap = 3 + 3 * slots_capacity();
		pfds = calloc((size_t) pfd_cap, sizeof *pfds);
		if (pfds == NULL)
			abort();
		pfds[npfd++] = (struct pollfd){.fd = daemon_local.signal_fd, .events = POLLIN};
		if (daemon_connected() && daemon_local.listen != NULL) {
			listen_at = npfd;
			pfds[npfd++] = (struct pollfd){.fd = PQsocket(daemon_local.listen), .events = POLLIN};
		}
		if (daemon_local.connecting && !daemon_local.listen_up_done) {
			up_listen_at = npfd;
			pfds[npfd++] = (struct pollfd){.fd = PQsocket(daemon_local.listen),
			                               .events = daemon_local.listen_up.events};
		}
		if (daemon_local.connecting && !daemon_local.work_up_done) {
			up_work_at = npfd;
			pfds[npfd++] = (struct pollfd){.fd = PQsocket(daemon_local.work),
			                               .events = daemon_local.work_up.events};
		}
		first_slot = npfd;
		npfd += slots_pollfds(pfds + npfd);

		if (poll(pfds, (nfds_t) npfd, daemon_poll_timeout(now)) < 0 && errno != EINTR) {
			log_error("poll failed: %s", strerror(errno));
			free(pfds);
			return EXIT_FAILURE;
		}
		now = clock_now_ms();

		sig = signals_take();
		if (sig.stop > 0 && (daemon_local.stopping || sig.stop > 1)) {
			free(pfds);
			daemon_stop_now();
			break;
		}
		if (sig.stop > 0)
			daemon_begin_stop(now);
		if (sig.reload > 0)
			daemon_reload();

		if (listen_at >= 0 && daemon_local.listen != NULL && pfds[listen_at].revents != 0)
			daemon_drain_notifications();
		if (daemon_local.connecting)
			daemon_connect_step(up_listen_at >= 0 ? pfds[up_listen_at].revents : 0,
			                    up_work_at >= 0 ? pfds[up_work_at].revents : 0, now);
		for (int p = first_slot; p < npfd; p++) {
			if (pfds[p].revents == 0)
				continue;
			slots_on_ready(pfds[p].fd, pfds[p].revents);
		}
		free(pfds);
		slots_reap();
		slots_check(now);
		if (daemon_local.stopping && !daemon_local.stop_handlers_sent && now >= daemon_local.stop_deadline_ms
		    && slots_running() > 0) {
			log_warn("shutdown grace over: stopping %d handlers", slots_running());
			daemon_local.stop_handlers_sent = true;
			slots_stop_all(now);
		}
		/* A freed slot is room for the next task: claim at once. */
		if (slots_take_freed())
			daemon_local.sweep = true;

		if (daemon_local.work == NULL && now >= daemon_local.reconnect_at_ms)
			daemon_connect_start();
		/* Successes wait for the claim below when there is one: it
		 * records them in the same commit (sql/complete_and_claim.sql). */
		claim_now = daemon_connected() && !daemon_local.stopping
		            && slots_running() < daemon_local.cfg->concurrency
		            && (daemon_local.sweep || now >= daemon_local.next_claim_ms);
		if (!claim_now || outbox_completes(&ignored) == 0)
			daemon_flush_outcomes();
		if (daemon_connected() && now >= daemon_local.next_lease_ms) {
			int64_t every = daemon_min(daemon_local.cfg->lease_ms / 3, daemon_local.cfg->poll_interval_ms);

			daemon_local.next_lease_ms = now + every;
			daemon_lease_tick();
		}
		if (claim_now && daemon_connected())
			daemon_claim();
		daemon_flush_outcomes();

		if (daemon_local.stopping && slots_running() == 0) {
			if (outbox_count() == 0)
				break;
			/* Outcomes still to write: keep reconnecting a while. */
			if (now >= daemon_local.stop_deadline_ms + DAEMON_OUTCOME_WAIT_MS) {
				log_warn("%zu outcomes could not be written; their leases will expire and "
				         "the tasks run again", outbox_count());
				break;
			}
		}
	}
	log_info("stopped");
	outbox_free();
	slots_free();
	if (daemon_local.listen != NULL)
		PQfinish(daemon_local.listen);
	if (daemon_local.work != NULL)
		PQfinish(daemon_local.work);
	config_free(daemon_local.cfg);
	return EXIT_SUCCESS;
}

/*
 * The test runner: every suite, in two tiers.
 *
 * The unit tier needs no database. The DB tier needs a PostgreSQL server in
 * $PGHOST; `make check` runs this binary under tests/pg_scratch.sh, which
 * starts one. PGDISPATCH_TIER=unit or =db runs one tier; CK_RUN_SUITE and
 * CK_RUN_CASE narrow further (Check's own variables).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int
main(void)
{
	const char *tier = getenv("PGDISPATCH_TIER");
	bool unit = tier == NULL || strcmp(tier, "unit") == 0;
	bool db = tier == NULL || strcmp(tier, "db") == 0;
	SRunner *sr = srunner_create(NULL);
	int failed;

	if (db && getenv("PGHOST") == NULL) {
		fprintf(stderr, "DB tier needs PGHOST; run it with `make check`, which starts a scratch PostgreSQL\n");
		if (tier != NULL)
			return EXIT_FAILURE;
		db = false;
	}
	if (unit) {
		srunner_add_suite(sr, cli_suite());
		srunner_add_suite(sr, config_suite());
		srunner_add_suite(sr, cron_suite());
		srunner_add_suite(sr, db_suite());
		srunner_add_suite(sr, http_template_suite());
		srunner_add_suite(sr, json_suite());
		srunner_add_suite(sr, log_suite());
		srunner_add_suite(sr, migrate_unit_suite());
		srunner_add_suite(sr, policy_suite());
		srunner_add_suite(sr, secrets_suite());
		srunner_add_suite(sr, slots_suite());
	}
	if (db) {
		srunner_add_suite(sr, migrate_suite());
		srunner_add_suite(sr, schema_suite());
		srunner_add_suite(sr, roles_suite());
		srunner_add_suite(sr, admin_suite());
		srunner_add_suite(sr, breakers_suite());
		srunner_add_suite(sr, schedules_suite());
		srunner_add_suite(sr, queue_suite());
		srunner_add_suite(sr, outbox_suite());
		srunner_add_suite(sr, daemon_suite());
		srunner_add_suite(sr, daemon_faults_suite());
		srunner_add_suite(sr, hostile_suite());
		srunner_add_suite(sr, pgbouncer_suite());
		srunner_add_suite(sr, reliability_suite());
		srunner_add_suite(sr, operations_suite());
		srunner_add_suite(sr, recipes_suite());
		srunner_add_suite(sr, source_check_suite());
		srunner_add_suite(sr, sources_suite());
		srunner_add_suite(sr, http_suite());
		srunner_add_suite(sr, breakers_daemon_suite());
		srunner_add_suite(sr, ordering_suite());
		srunner_add_suite(sr, examples_suite());
	}
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#!/usr/bin/env bash
# regress/auto-repack.sh -- the auto-repack background worker.
#
# Runs against a server started with shared_preload_libraries = clustered_pg,
# clustered_pg.auto_repack_database = postgres and
# clustered_pg.auto_repack_naptime = 1 (regress/test-all.sh, cluster group
# "autorepack"; by hand:
#   PGCLUSTER_PRELOAD=clustered_pg PGCLUSTER_CONF=$'clustered_pg.auto_repack_database = postgres\nclustered_pg.auto_repack_naptime = 1' \
#     regress/with-cluster.sh "$PG_CONFIG" regress/auto-repack.sh
# ). Two tables are loaded in random key order: one whose index says
# auto_repack_interval = 1, one with 0 (never). With nobody touching them,
# the worker must repack the first (in key order on disk, no fragmented
# segment after VACUUM, same rows, verify() clean) and leave the second
# alone. Exit status 0 = pass.
set -euo pipefail

fail() { echo "auto-repack: FAIL: $*" >&2; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }

workers=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'clustered_pg auto-repack'")
[ "$workers" = 1 ] || fail "expected one auto-repack worker in pg_stat_activity, found $workers"

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION IF NOT EXISTS clustered_pg;
DROP TABLE IF EXISTS ar_due, ar_never;
SELECT setseed(0.3);
CREATE TABLE ar_due (id bigint NOT NULL, pad text) USING clustered_heap;
CREATE INDEX ar_due_ck ON ar_due USING clustered_pk_index (id) WITH (auto_repack_interval = 1);
CREATE TABLE ar_never (id bigint NOT NULL, pad text) USING clustered_heap;
CREATE INDEX ar_never_ck ON ar_never USING clustered_pk_index (id) WITH (auto_repack_interval = 0);
INSERT INTO ar_due SELECT g, repeat('a', 80) FROM generate_series(1, 20000) g ORDER BY random();
INSERT INTO ar_never SELECT g, repeat('a', 80) FROM generate_series(1, 20000) g ORDER BY random();
SQL

# The worker wakes every second; segments are due one second after their
# last change. Give it up to 90 seconds.
corr=""
for _ in $(seq 1 90); do
    sleep 1
    q "VACUUM ANALYZE ar_due" >/dev/null
    corr=$(q "SELECT round(correlation::numeric, 3) FROM pg_stats WHERE tablename = 'ar_due' AND attname = 'id'")
    frag=$(q "SELECT fragmented_segments FROM clustered_pg.segment_map_stats('ar_due')")
    if [ "$frag" = 0 ] && [ -n "$corr" ] && awk -v c="$corr" 'BEGIN { exit !(c > 0.99) }'; then
        break
    fi
done
echo "ar_due: correlation $corr, fragmented segments $frag"
[ "$frag" = 0 ] || fail "ar_due still has $frag fragmented segments"
awk -v c="$corr" 'BEGIN { exit !(c > 0.99) }' || fail "ar_due correlation $corr, expected > 0.99"
[ "$(q "SELECT count(*) || ' ' || sum(id) FROM ar_due")" = "20000 200010000" ] || fail "ar_due lost or gained rows"
[ "$(q "SELECT count(*) FROM clustered_pg.verify('ar_due')")" = 0 ] || fail "verify(ar_due) reports violations"

# A light churn afterwards (5 % of the rows updated off their full pages)
# leaves nearly every segment within 1.25x its ideal blocks: the worker
# must not rewrite the table for it (before it weighed that, it moved 86 %
# of the rows again here; now a few segments, under 10 %). Its moves show
# as deletes in the statistics.
moved=$(q "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'ar_due'")
[ "$moved" -ge 20000 ] || fail "the worker's moves should show in n_tup_del (saw $moved)"
q "UPDATE ar_due SET pad = pad || 'u' WHERE id % 20 = 0" >/dev/null
sleep 6
again=$(q "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'ar_due'")
echo "ar_due: rows moved by the worker $moved, after a 5 % update churn $again"
[ $((again - moved)) -lt 2000 ] || fail "the worker moved $((again - moved)) rows after a light churn"
[ "$(q "SELECT count(*) FROM clustered_pg.verify('ar_due')")" = 0 ] || fail "verify(ar_due) after churn"

q "VACUUM ANALYZE ar_never" >/dev/null
ncorr=$(q "SELECT round(correlation::numeric, 3) FROM pg_stats WHERE tablename = 'ar_never' AND attname = 'id'")
nfrag=$(q "SELECT fragmented_segments FROM clustered_pg.segment_map_stats('ar_never')")
echo "ar_never: correlation $ncorr, fragmented segments $nfrag"
awk -v c="$ncorr" 'BEGIN { exit !(c < 0.5) }' || fail "the worker moved rows of a table whose auto_repack_interval is 0"
[ "$nfrag" -gt 0 ] || fail "ar_never should still be fragmented"
[ "$(q "SELECT count(*) FROM clustered_pg.verify('ar_never')")" = 0 ] || fail "verify(ar_never) reports violations"
echo "auto-repack: ok"

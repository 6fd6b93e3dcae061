-- regress/pgbench/locator_insert.sql -- pgbench script of regress/concurrency-smoke.sh:
-- every client inserts rows whose locator major is its client id and whose
-- minor is the (random) row id, so the checks can verify the round trip.
\set id random(1, 1000000000)
INSERT INTO smoke (id, loc) VALUES (:id, clustered_pg.locator_pack(:client_id, :id));

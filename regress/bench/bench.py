#!/usr/bin/env python3
"""regress/bench/bench.py -- measurement and report of `make bench`.

    bench.py measure   run inside regress/with-cluster.sh (PG* env set):
                       loads every variant, measures, writes
                       $BENCH_OUT/results.json
    bench.py report    reads results.json, writes results.md, the PNG plots
                       and (BENCH_DOCS=1) docs/bench/*.png + docs/benchmarks.md;
                       $BENCH_OUT/lookup.md (regress/bench/lookup_check.sh)
                       is appended to both when present

Measuring uses the standard library only: psql and pgbench are driven through
subprocess.  Plotting uses matplotlib when importable (run.sh installs it into
.deps/py); without it the tables and JSON are still written.
Every number in the outputs is measured by this script; nothing is typed in.
"""
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ALL_VARIANTS = ["heap_btree", "heap_cluster", "heap_ck", "clustered", "clustered_pk", "clustered_repack",
                "clustered_auto"]
BASELINE = "heap_btree"
# Variants that use clustered_pg (the ones the "behind" paragraph is about).
CPG_VARIANTS = ["heap_ck", "clustered", "clustered_pk", "clustered_repack", "clustered_auto"]
# clustered_auto: seconds a segment must stay unchanged before the
# auto-repack worker moves it (its index's auto_repack_interval); every
# other variant says 0, so the worker leaves it alone.
AUTO_INTERVAL = 5
WIDTHS = [1, 100, 5000, 100000]
PHASES = ["after_load", "after_churn"]
PHASE_TITLE = {"after_load": "After load (VACUUM ANALYZE)",
               "after_churn": "After churn (10% updates, 5% deletes, 5% inserts, VACUUM ANALYZE)"}
SINGLE_PER_SCRIPT = 10   # single-row INSERT statements per pgbench script run
BATCH = 1000             # rows per batch INSERT
CHURN_CHUNK = 1000       # churn operations per transaction
AB_ROUNDS = 10           # rounds of the interleaved load

# Server settings recorded in results.json.
SETTING_NAMES = ["shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size",
                 "max_wal_size", "checkpoint_timeout", "autovacuum", "fsync", "synchronous_commit",
                 "full_page_writes", "wal_level", "max_parallel_workers_per_gather", "jit",
                 "random_page_cost", "effective_io_concurrency", "block_size"]


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


T_START = time.time()


def log(msg):
    el = time.time() - T_START
    sys.stderr.write("bench [%3d:%02d] %s\n" % (el // 60, el % 60, msg))
    sys.stderr.flush()


class SqlError(Exception):
    def __init__(self, sql, stderr):
        super().__init__(stderr.strip())
        self.sql = sql
        self.stderr = stderr.strip()


def psql(sql, timeout=None):
    """Run SQL (may be several statements, each autocommitted) and return
    the unaligned, tuples-only output."""
    p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                       input=sql, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SqlError(sql, p.stderr)
    return p.stdout


def psql_val(sql):
    out = psql(sql).strip()
    return out


def q_ident(name):
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------
# Progress / ETA
# ---------------------------------------------------------------------------
class Progress:
    """ETA from the steps still to do.  Each step has a kind (load, measure,
    churn, ...); once one step of a kind is done its duration (scaled per
    unit) is used for the rest of that kind, before that a prior relative to
    the load."""
    PRIOR = {"load": 1.0, "prepare": 0.15, "measure": 0.5, "churn": 0.3, "maint": 0.2, "ab": 0.8}

    def __init__(self):
        self.todo = []      # (kind, label)
        self.seen = {}      # kind -> [durations]
        self.cur = None
        self.cur_start = None

    def plan(self, steps):
        self.todo = list(steps)

    def per_kind(self, kind):
        if kind in self.seen:
            return statistics.mean(self.seen[kind])
        if "load" in self.seen:
            return statistics.mean(self.seen["load"]) * self.PRIOR.get(kind, 0.3)
        return None

    def eta(self):
        total = 0.0
        for kind, _ in self.todo:
            t = self.per_kind(kind)
            if t is None:
                return None
            total += t
        if self.cur is not None:
            t = self.per_kind(self.cur[0])
            if t is None:
                return None
            total += max(0.0, t - (time.time() - self.cur_start))
        return total

    def eta_str(self):
        e = self.eta()
        if e is None:
            return "ETA ?"
        return "ETA %d:%02d" % (e // 60, e % 60)

    def start(self, kind, label):
        for i, s in enumerate(self.todo):
            if s == (kind, label):
                del self.todo[i]
                break
        self.cur = (kind, label)
        self.cur_start = time.time()
        log("== %s (%s)" % (label, self.eta_str()))

    def done(self):
        if self.cur is None:
            return
        d = time.time() - self.cur_start
        self.seen.setdefault(self.cur[0], []).append(d)
        log("   %s done in %.1f s (%s)" % (self.cur[1], d, self.eta_str()))
        self.cur = None


PROGRESS = Progress()


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------
def machine_info():
    info = {"hostname_kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass
    return info


SETUP_SQL = r"""
CREATE EXTENSION IF NOT EXISTS clustered_pg;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one query, as json.
CREATE FUNCTION bench.explain(q text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
    RETURN j;
END $$;

-- Distinct heap blocks holding the rows of a predicate, and their count.
CREATE FUNCTION bench.blocks(tbl regclass, pred text, OUT blocks bigint, OUT nrows bigint)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT count(DISTINCT (ctid::text::point)[0])::bigint, count(*)::bigint FROM %s WHERE %s',
                   tbl, pred) INTO blocks, nrows;
END $$;
"""


def create_staging(n, order, seed):
    if order == "random":
        ordkey = "md5('%d:' || i)" % seed
    else:
        ordkey = "i"
    half = n // 2
    nnew = n // 20
    psql(f"""
CREATE TABLE bench.staging AS
SELECT (row_number() OVER (ORDER BY {ordkey}))::int AS seq,
       i::bigint AS id,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS ts,
       substr(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text), 1, 100) AS payload
  FROM generate_series(1, {n}) AS i;
ALTER TABLE bench.staging ADD PRIMARY KEY (seq);

-- Churn operations, the same for every variant, applied in a random order
-- (fixed seed): 10 % updates, 5 % deletes of existing keys, 5 % new keys
-- above N.
CREATE TABLE bench.churn_ops AS
SELECT (row_number() OVER (ORDER BY md5('{seed}:' || kind || ':' || id)))::int AS opseq, kind, id
  FROM (SELECT CASE WHEN b < 10 THEN 'u' ELSE 'd' END AS kind, id
          FROM (SELECT id, ((hashint8extended(id, {seed}) & 2147483647) % 100) AS b
                  FROM generate_series(1::bigint, {n}::bigint) AS id) s
         WHERE b < 15
        UNION ALL
        SELECT 'i', id FROM generate_series({n + 1}::bigint, {n + nnew}::bigint) AS id) o;
ALTER TABLE bench.churn_ops ADD PRIMARY KEY (opseq);
VACUUM ANALYZE bench.staging;
VACUUM ANALYZE bench.churn_ops;
""")
    return half


def variant_ddl(v):
    t = "bench." + v
    ck_with = os.environ.get("BENCH_CK_WITH", "").strip()
    opts = [o for o in [ck_with] if o]
    if "auto_repack_interval" not in ck_with:
        opts.insert(0, "auto_repack_interval = %d" % (AUTO_INTERVAL if v == "clustered_auto" else 0))
    ckw = " WITH (%s)" % ", ".join(opts)
    cols = "id bigint NOT NULL, ts timestamptz NOT NULL, payload text NOT NULL"
    if v in ("heap_btree", "heap_cluster"):
        return [f"CREATE TABLE {t} ({cols}, CONSTRAINT {v}_pkey PRIMARY KEY (id));"]
    if v == "heap_ck":
        return [f"CREATE TABLE {t} ({cols});",
                f"CREATE INDEX {v}_ck ON {t} USING clustered_pk_index (id){ckw};"]
    if v in ("clustered", "clustered_repack", "clustered_auto"):
        return [f"CREATE TABLE {t} ({cols}) USING clustered_heap;",
                f"CREATE INDEX {v}_ck ON {t} USING clustered_pk_index (id){ckw};"]
    if v == "clustered_pk":
        return [f"CREATE TABLE {t} ({cols}, CONSTRAINT {v}_pkey PRIMARY KEY (id)) USING clustered_heap;",
                f"CREATE INDEX {v}_ck ON {t} USING clustered_pk_index (id){ckw};"]
    raise ValueError(v)


def run_streaming(cmd, on_line, stdin_text=None):
    """Run cmd, calling on_line(stream, line) for each output line; returns
    (rc, stdout_text, stderr_text)."""
    with tempfile.TemporaryFile("w+") as errf:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        if stdin_text is not None:
            import threading

            def feed():
                try:
                    p.stdin.write(stdin_text)
                    p.stdin.close()
                except BrokenPipeError:
                    pass
            threading.Thread(target=feed, daemon=True).start()
        out = []
        for line in p.stdout:
            out.append(line)
            on_line(line.rstrip("\n"))
        rc = p.wait()
        return rc, "".join(out)


def load_single(v, half, workdir):
    """First half: single-row INSERTs from 2 concurrent pgbench clients
    (single_inserts), every key of the half exactly once (checked
    afterwards)."""
    t = "bench." + v
    clients = 2
    state = {"rows": 0.0, "last": time.time()}

    def on_line(line):
        m = re.match(r"progress: ([\d.]+) s, ([\d.]+) tps", line)
        if m:
            state["rows"] = min(half, state["rows"] + float(m.group(2)) * SINGLE_PER_SCRIPT * 5)
            el = float(m.group(1))
            rate = state["rows"] / el if el > 0 else 0
            left = (half - state["rows"]) / rate if rate > 0 else 0
            log("   %s single-row INSERTs: ~%d / %d rows, %.0f rows/s, phase ETA %ds (%s)"
                % (v, state["rows"], half, rate, left, PROGRESS.eta_str()))
        elif line.strip() and not line.startswith(("pgbench", "transaction type", "scaling", "query mode",
                                                      "number of", "maximum", "latency", "initial", "tps",
                                                      "progress")):
            pass
    secs = single_inserts(v, 1, half, workdir, on_line, progress=True)
    got = int(psql_val(f"SELECT count(*) FROM {t};"))
    if got != half:
        raise SqlError("count after single-row load", f"expected {half} rows, found {got}")
    return {"rows": half, "seconds": round(secs, 3), "rows_per_s": round(half / secs, 1),
            "clients": clients, "statements_per_pgbench_script": SINGLE_PER_SCRIPT}


def load_batches(v, half, n):
    """Second half: INSERT ... SELECT from staging in BATCH-row chunks, one
    statement (and transaction) each, from one psql session."""
    t = "bench." + v
    lines = []
    nb = math.ceil((n - half) / BATCH)
    step = max(1, nb // 10)
    for b in range(nb):
        lo = half + 1 + b * BATCH
        hi = min(n, lo + BATCH - 1)
        lines.append(f"INSERT INTO {t} (id, ts, payload) SELECT id, ts, payload FROM bench.staging "
                     f"WHERE seq BETWEEN {lo} AND {hi} ORDER BY seq;\n")
        if (b + 1) % step == 0 or b == nb - 1:
            lines.append(f"\\echo BATCHES {b + 1} {hi - half}\n")
    t0 = time.time()

    def on_line(line):
        m = re.match(r"BATCHES (\d+) (\d+)", line)
        if m:
            rows = int(m.group(2))
            el = time.time() - t0
            rate = rows / el if el > 0 else 0
            left = (n - half - rows) / rate if rate > 0 else 0
            log("   %s batch INSERTs: %d / %d rows, %.0f rows/s, phase ETA %ds (%s)"
                % (v, rows, n - half, rate, left, PROGRESS.eta_str()))
    rc, out = run_streaming(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], on_line,
                            stdin_text="".join(lines))
    secs = time.time() - t0
    if rc != 0:
        raise SqlError("batch load of " + t, out)
    return {"rows": n - half, "seconds": round(secs, 3), "rows_per_s": round((n - half) / secs, 1),
            "batch_rows": BATCH}


# The interleaved load: heap_btree and clustered take turns on the same
# key ranges, so whatever else the machine does hits both alike.
AB_PAIR = ("heap_btree", "clustered")


def single_inserts(t, lo, hi, workdir, on_line, progress=False):
    """Seconds for single-row INSERTs of staging rows lo..hi into bench.t
    from 2 pgbench clients. Each INSERT takes the next staging row by a
    sequence of its own; the guard seq <= hi makes over-shooting
    transactions insert nothing, so every key is inserted exactly once."""
    seqname = f"bench.{t}_seq_{lo}"
    psql(f"CREATE SEQUENCE {seqname} START {lo};")
    stmt = (f"INSERT INTO bench.{t} (id, ts, payload) SELECT id, ts, payload FROM bench.staging "
            f"WHERE seq = (SELECT nextval('{seqname}')) AND seq <= {hi};\n")
    script = os.path.join(workdir, f"single_{t}.sql")
    with open(script, "w") as f:
        f.write(stmt * SINGLE_PER_SCRIPT)
    per_client = math.ceil((hi - lo + 1) / (2 * SINGLE_PER_SCRIPT))
    t0 = time.time()
    rc, out = run_streaming(["pgbench", "-n", "-M", "prepared", "-c", "2", "-j", "2", "-t", str(per_client)]
                            + (["-P", "5"] if progress else []) + ["-f", script], on_line)
    secs = time.time() - t0
    if rc != 0:
        raise SqlError("pgbench -f " + script + "\n" + stmt, out)
    return secs


def ab_batches(t, lo, hi):
    """Seconds for BATCH-row INSERT ... SELECT statements of staging rows
    lo..hi into t, one transaction each, from one session."""
    lines = [f"INSERT INTO bench.{t} (id, ts, payload) SELECT id, ts, payload FROM bench.staging "
             f"WHERE seq BETWEEN {a} AND {min(hi, a + BATCH - 1)} ORDER BY seq;\n"
             for a in range(lo, hi + 1, BATCH)]
    t0 = time.time()
    rc, out = run_streaming(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], lambda line: None,
                            stdin_text="".join(lines))
    secs = time.time() - t0
    if rc != 0:
        raise SqlError("batch load of " + t, out)
    return secs


def interleaved_load(total, rounds, workdir):
    """Loads `total` staging rows into a fresh table of each AB_PAIR variant,
    in `rounds` rounds: each round's rows go first by single-row INSERTs
    (half), then by batches (half), the two tables taking turns (which one
    goes first alternates). The ratios of summed times are the throughput
    ratios; the per-round ratios show how much the machine moved them."""
    tables = {v: "ab_" + v for v in AB_PAIR}
    for v, t in tables.items():
        psql(f"DROP TABLE IF EXISTS bench.{t};\n" + "\n".join(
            d.replace(f"bench.{v} ", f"bench.{t} ").replace(f"{v}_pkey", f"{t}_pkey").replace(f"{v}_ck", f"{t}_ck")
            for d in variant_ddl(v)) + "\n")
    per_round = total // rounds
    secs = {v: {"single": [], "batch": []} for v in AB_PAIR}
    rows = {"single": 0, "batch": 0}
    for r in range(rounds):
        lo = r * per_round + 1
        mid = lo + per_round // 2
        hi = lo + per_round - 1
        order = AB_PAIR if r % 2 == 0 else AB_PAIR[::-1]
        for v in order:
            secs[v]["single"].append(single_inserts(tables[v], lo, mid - 1, workdir, lambda line: None))
        for v in order:
            secs[v]["batch"].append(ab_batches(tables[v], mid, hi))
        rows["single"] += mid - lo
        rows["batch"] += hi - mid + 1
        log("   interleaved load: round %d / %d (%s)" % (r + 1, rounds, PROGRESS.eta_str()))
    out = {"rows_per_table": rounds * per_round, "rounds": rounds, "pair": list(AB_PAIR), "phases": {}}
    for v, t in tables.items():
        got = int(psql_val(f"SELECT count(*) FROM bench.{t};"))
        if got != rounds * per_round:
            raise SqlError("count after interleaved load", f"{t}: expected {rounds * per_round} rows, found {got}")
    base, other = AB_PAIR
    for ph in ("single", "batch"):
        per_round_ratio = [b / o for b, o in zip(secs[base][ph], secs[other][ph]) if o > 0]
        out["phases"][ph] = {
            "rows": rows[ph],
            "rows_per_s": {v: round(rows[ph] / sum(secs[v][ph]), 1) for v in AB_PAIR},
            "seconds": {v: [round(x, 3) for x in secs[v][ph]] for v in AB_PAIR},
            "ratio": round(sum(secs[base][ph]) / sum(secs[other][ph]), 3),
            "round_ratio_min": round(min(per_round_ratio), 3),
            "round_ratio_max": round(max(per_round_ratio), 3),
        }
    psql("".join(f"DROP TABLE bench.{t};\n" for t in tables.values()))
    return out


def verify_keys(v, n, extra=None):
    t = "bench." + v
    r = psql_val(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {t};").split("|")
    cnt, dist, mn, mx = (int(x) for x in r)
    ok = cnt == n and dist == n and mn == 1 and mx == n
    if not ok:
        raise SqlError("key verification of " + t,
                       f"expected {n} distinct keys 1..{n}, found count={cnt} distinct={dist} min={mn} max={mx}")
    return {"count": cnt, "distinct": dist, "min": mn, "max": mx}


def apply_churn(v, n):
    """10 % updates (payload change), 5 % deletes, 5 % new keys above N, in
    a random order, CHURN_CHUNK operations per transaction."""
    t = "bench." + v
    total = int(psql_val("SELECT count(*) FROM bench.churn_ops;"))
    nchunks = math.ceil(total / CHURN_CHUNK)
    parts = 10
    per = math.ceil(nchunks / parts)
    t0 = time.time()
    # A chunk that meets a row the auto-repack worker moved under it fails
    # with a serialization error (40001), as any writer must expect then:
    # it is retried, and the retries are reported.
    psql("CREATE TABLE IF NOT EXISTS bench.churn_retries (variant text, retries int);")
    for p in range(parts):
        c0, c1 = p * per, min(nchunks, (p + 1) * per)
        if c0 >= c1:
            break
        psql(f"""
DO $$
DECLARE c int; lo int; hi int; retries int := 0;
BEGIN
  FOR c IN {c0}..{c1 - 1} LOOP
    lo := c * {CHURN_CHUNK} + 1; hi := lo + {CHURN_CHUNK} - 1;
    LOOP
      BEGIN
        UPDATE {t} SET payload = reverse(payload)
         WHERE id IN (SELECT id FROM bench.churn_ops WHERE opseq BETWEEN lo AND hi AND kind = 'u');
        DELETE FROM {t}
         WHERE id IN (SELECT id FROM bench.churn_ops WHERE opseq BETWEEN lo AND hi AND kind = 'd');
        INSERT INTO {t} (id, ts, payload)
        SELECT o.id, timestamptz '2024-01-01 00:00:00+00' + o.id * interval '1 second',
               substr(md5(o.id::text) || md5((o.id + 1)::text) || md5((o.id + 2)::text) || md5((o.id + 3)::text), 1, 100)
          FROM bench.churn_ops o WHERE o.opseq BETWEEN lo AND hi AND o.kind = 'i' ORDER BY o.opseq;
        EXIT;
      EXCEPTION WHEN serialization_failure THEN
        retries := retries + 1;
        IF retries > 10000 THEN RAISE; END IF;
      END;
    END LOOP;
    COMMIT;
  END LOOP;
  INSERT INTO bench.churn_retries VALUES ('{v}', retries);
END $$;
""")
        log("   %s churn: %d / %d operations (%s)" % (v, min(total, c1 * CHURN_CHUNK), total, PROGRESS.eta_str()))
    secs = time.time() - t0
    counts = dict(tuple(x.split("|")) for x in
                  psql_val("SELECT kind, count(*) FROM bench.churn_ops GROUP BY kind;").splitlines())
    retries = int(psql_val(f"SELECT coalesce(sum(retries), 0) FROM bench.churn_retries WHERE variant = '{v}';"))
    return {"operations": total, "updates": int(counts.get("u", 0)), "deletes": int(counts.get("d", 0)),
            "inserts": int(counts.get("i", 0)), "seconds": round(secs, 3),
            "ops_per_s": round(total / secs, 1), "ops_per_transaction": CHURN_CHUNK,
            "retried_chunks": retries}


def describe_plan(plan):
    """'Bitmap Heap Scan > Bitmap Index Scan (idx)' from an EXPLAIN JSON plan
    ('Custom Scan ClusteredRangeScan (idx)' for the range custom scan)."""
    parts = []
    node = plan
    while node is not None:
        s = node.get("Node Type", "?")
        if node.get("Custom Plan Provider"):
            s += " " + node["Custom Plan Provider"]
        if node.get("Index Name"):
            s += " (%s)" % node["Index Name"]
        parts.append(s)
        kids = node.get("Plans") or []
        node = kids[0] if kids else None
    return " > ".join(parts)


def positions(seed, phase, w, maxid, reps):
    rng = random.Random("%s:%s:%d" % (seed, phase, w))
    return [rng.randint(1, max(1, maxid - w + 1)) for _ in range(reps)]


def measure_queries(v, phase, maxid, seed, reps):
    t = "bench." + v
    res = {}
    for w in WIDTHS:
        los = positions(seed, phase, w, maxid, reps)
        rows = []
        for lo in los:
            pred = f"id = {lo}" if w == 1 else f"id BETWEEN {lo} AND {lo + w - 1}"
            rows.append(f"SELECT json_build_object('lo', {lo}, 'plan', bench.explain($q$SELECT * FROM {t} WHERE {pred}$q$), "
                        f"'b', (SELECT row_to_json(b) FROM bench.blocks('{t}', $q${pred}$q$) b))::jsonb;\n")
        out = psql("".join(rows))
        samples = []
        for line in out.splitlines():
            if not line.strip():
                continue
            j = json.loads(line)
            top = j["plan"][0]
            plan = top["Plan"]
            samples.append({
                "lo": j["lo"],
                "ms": top.get("Execution Time"),
                "buffers": int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0)),
                "rows": int(plan.get("Actual Rows", 0)),
                "blocks": int(j["b"]["blocks"]),
                "count": int(j["b"]["nrows"]),
                "plan": describe_plan(plan),
            })
        plans = {}
        for s in samples:
            plans[s["plan"]] = plans.get(s["plan"], 0) + 1
        res[str(w)] = {
            "width": w,
            "reps": len(samples),
            "median_ms": round(statistics.median(s["ms"] for s in samples), 4),
            "median_buffers": statistics.median(s["buffers"] for s in samples),
            "median_blocks": statistics.median(s["blocks"] for s in samples),
            "median_rows": statistics.median(s["rows"] for s in samples),
            "plan": max(plans, key=plans.get),
            "plans": plans,
            "samples": samples,
        }
        # The plan's row count must equal the count of the same predicate.
        bad = [s for s in samples if s["rows"] != s["count"]]
        if bad:
            res[str(w)]["row_count_mismatch"] = bad[:5]
    return res


def measure_tps(v, maxid, secs, workdir):
    script = os.path.join(workdir, f"tps_{v}.sql")
    with open(script, "w") as f:
        f.write(f"\\set k random(1, {maxid})\nSELECT * FROM bench.{v} WHERE id = :k;\n")
    p = subprocess.run(["pgbench", "-n", "-M", "prepared", "-T", str(secs), "-c", "2", "-j", "2", "-f", script],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SqlError("pgbench -f " + script, p.stderr + p.stdout)
    m = re.search(r"tps = ([\d.]+) \((without|excluding)", p.stdout)
    if not m:
        m = re.search(r"tps = ([\d.]+)", p.stdout)
    return float(m.group(1)) if m else None


def measure_phase(v, phase, maxid, seed, reps, tps_secs, workdir):
    t = "bench." + v
    out = {"loadavg_1m_start": os.getloadavg()[0]}
    r = psql_val(f"""SELECT pg_relation_size('{t}'), current_setting('block_size')::int,
        (SELECT count(*) FROM {t}), (SELECT correlation FROM pg_stats WHERE schemaname = 'bench'
        AND tablename = '{v}' AND attname = 'id');""").split("|")
    heap_bytes, bs, live = int(r[0]), int(r[1]), int(r[2])
    out["heap_bytes"] = heap_bytes
    out["heap_pages"] = heap_bytes // bs
    out["live_rows"] = live
    out["rows_per_page"] = round(live / max(1, heap_bytes // bs), 3)
    out["correlation"] = float(r[3]) if r[3] != "" else None
    idx = {}
    for line in psql_val(f"""SELECT c.relname, a.amname, pg_relation_size(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE i.indrelid = '{t}'::regclass ORDER BY 1;""").splitlines():
        name, am, size = line.split("|")
        idx[name] = {"am": am, "bytes": int(size)}
    out["indexes"] = idx
    out["index_bytes"] = sum(x["bytes"] for x in idx.values())
    out["queries"] = measure_queries(v, phase, maxid, seed, reps)
    out["point_tps"] = measure_tps(v, maxid, tps_secs, workdir)
    out["loadavg_1m_end"] = os.getloadavg()[0]
    return out


def so_digest():
    """sha256 of the installed clustered_pg.so: if another `make install`
    replaces it during the run, the run measured two builds (flagged)."""
    import hashlib
    try:
        libdir = subprocess.run([os.environ.get("PG_CONFIG", "pg_config"), "--pkglibdir"],
                                capture_output=True, text=True).stdout.strip()
        with open(os.path.join(libdir, "clustered_pg.so"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    except OSError:
        return None


# clustered_pg.auto_repack_naptime in run.sh's server settings.
AUTO_NAPTIME = 2
# Polls (2 s apart) without a new move before the worker counts as done:
# longer than a segment's wait to become due plus two naptimes, so a pause
# between rounds of the worker is not taken for its end.
WORKER_QUIET_POLLS = (AUTO_INTERVAL + 2 * AUTO_NAPTIME) // 2 + 1


def wait_for_worker(v, started):
    """clustered_auto: wait until the auto-repack worker has moved what it
    will move. Its moves show in pg_stat_user_tables.n_tup_del (it reports
    its statistics after every transaction); done when that count has grown
    and then stayed put for WORKER_QUIET_POLLS polls, or after 600 s.
    Returns what happened."""
    def dels():
        return int(psql_val(f"SELECT n_tup_del FROM pg_stat_user_tables WHERE relid = 'bench.{v}'::regclass;") or 0)
    base, last, still, grown = dels(), None, 0, False
    while time.time() - started < 600:
        time.sleep(2)
        cur = dels()
        grown = grown or cur > base
        still = still + 1 if cur == last else 0
        last = cur
        if grown and still >= WORKER_QUIET_POLLS:
            break
    return {"rows_moved": (last or base) - base, "seconds": round(time.time() - started, 1),
            "timed_out": not (grown and still >= WORKER_QUIET_POLLS)}


def vacuum_analyze(v):
    psql(f"ALTER TABLE bench.{v} ALTER COLUMN id SET STATISTICS 1000;\nVACUUM ANALYZE bench.{v};")


def pg_settings():
    names = ",".join("'%s'" % n for n in SETTING_NAMES)
    s = {}
    for line in psql_val(f"SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name IN ({names}) ORDER BY 1;").splitlines():
        name, setting, unit = line.split("|")
        s[name] = setting + (" " + unit if unit else "")
    return s


def cmd_measure():
    n = env_int("BENCH_N", 1000000)
    order = os.environ.get("BENCH_ORDER", "random")
    seed = env_int("BENCH_SEED", 42)
    reps = env_int("BENCH_QUERIES", 20)
    tps_secs = env_int("BENCH_TPS_SECONDS", 10)
    outdir = os.environ.get("BENCH_OUT", "bench-out")
    os.makedirs(outdir, exist_ok=True)
    global WIDTHS
    WIDTHS = [w for w in WIDTHS if w == 1 or w <= n // 2]
    workdir = tempfile.mkdtemp(prefix="bench-")
    os.chmod(workdir, 0o755)

    log("setting up (extension, helper functions)")
    psql(SETUP_SQL)
    has_ch = psql_val("SELECT count(*) FROM pg_am WHERE amname = 'clustered_heap';") == "1"
    has_repack = psql_val("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                          "WHERE n.nspname = 'clustered_pg' AND p.proname = 'repack';") != "0"
    has_worker = psql_val("SELECT count(*) FROM pg_stat_activity "
                          "WHERE backend_type = 'clustered_pg auto-repack';") != "0"
    available = ["heap_btree", "heap_cluster", "heap_ck"]
    if has_ch:
        available += ["clustered", "clustered_pk"]
        if has_repack:
            available.append("clustered_repack")
        if has_worker:
            available.append("clustered_auto")
    wanted = [x.strip() for x in os.environ.get("BENCH_VARIANTS", "").split(",") if x.strip()]
    if wanted:
        for w in wanted:
            if w not in ALL_VARIANTS:
                raise SystemExit("bench: unknown variant %r (known: %s)" % (w, ", ".join(ALL_VARIANTS)))
        skipped = [w for w in wanted if w not in available]
        variants = [w for w in wanted if w in available]
    else:
        skipped = []
        variants = available
    unavailable = [x for x in ALL_VARIANTS if x not in available]
    log("variants: %s%s" % (", ".join(variants),
                            ("; not available in this build: " + ", ".join(unavailable)) if unavailable else ""))

    res = {
        "generated_by": "regress/bench/bench.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": {"N": n, "order": order, "seed": seed, "queries_per_shape": reps,
                   "tps_seconds": tps_secs, "widths": WIDTHS,
                   "clustered_pk_index_with": os.environ.get("BENCH_CK_WITH", ""),
                   "single_row_half": n // 2, "batch_half": n - n // 2, "batch_rows": BATCH,
                   "churn": "10% updates (payload change), 5% deletes, 5% new keys N+1..1.05N in random order"},
        "machine": machine_info(),
        "postgres": {"version": psql_val("SELECT version();"),
                     "server_version_num": int(psql_val("SHOW server_version_num;")),
                     "settings": pg_settings(),
                     "postgresql_conf_added": os.environ.get("BENCH_PGCLUSTER_CONF", "").splitlines()},
        "extension_version": psql_val("SELECT extversion FROM pg_extension WHERE extname = 'clustered_pg';"),
        "git_commit": os.environ.get("BENCH_GIT_COMMIT") or subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "git_dirty": bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "csrc", "sql"],
                                         capture_output=True, text=True).stdout.strip()),
        "available": {"clustered_heap": has_ch, "repack": has_repack, "auto_repack_worker": has_worker},
        "so_sha256_start": so_digest(),
        "variants_requested_unavailable": skipped,
        "variants": {},
        "errors": [],
    }

    steps = [("prepare", "staging data"), ("ab", "interleaved load")]
    for v in variants:
        steps += [("load", f"{v}: load")]
        if v in ("heap_cluster", "clustered_repack", "clustered_auto"):
            steps += [("maint", f"{v}: maintenance")]
        steps += [("measure", f"{v}: measure after load"), ("churn", f"{v}: churn"),
                  ("measure", f"{v}: measure after churn")]
    PROGRESS.plan(steps)

    PROGRESS.start("prepare", "staging data")
    half = create_staging(n, order, seed)
    PROGRESS.done()
    # By default at the load's own scale: the issue measures 1M rows side by side.
    ab_n = min(n, env_int("BENCH_AB_N", n))
    if ab_n >= 2 * AB_ROUNDS * BATCH and all(v in available for v in AB_PAIR):
        PROGRESS.start("ab", "interleaved load")
        try:
            res["interleaved_load"] = interleaved_load(ab_n, AB_ROUNDS, workdir)
        except (SqlError, subprocess.SubprocessError) as e:
            msg = getattr(e, "stderr", str(e))
            log("ERROR in the interleaved load: %s" % msg)
            res["errors"].append({"variant": "interleaved", "step": "interleaved load", "error": msg, "sql": ""})
        PROGRESS.done()
    nnew = n // 20

    def save():
        with open(os.path.join(outdir, "results.json"), "w") as f:
            json.dump(res, f, indent=1, sort_keys=False)

    for v in variants:
        vr = {"ddl": variant_ddl(v), "load": {}, "phases": {}}
        res["variants"][v] = vr
        step = "?"
        try:
            step = "create"
            psql("\n".join(vr["ddl"]) + "\n")
            PROGRESS.start("load", f"{v}: load")
            step = "load single-row"
            vr["load"]["single"] = load_single(v, half, workdir)
            step = "load batches"
            vr["load"]["batch"] = load_batches(v, half, n)
            vr["load"]["verify"] = verify_keys(v, n)
            PROGRESS.done()
            if v == "heap_cluster":
                PROGRESS.start("maint", f"{v}: maintenance")
                step = "CLUSTER"
                t0 = time.time()
                psql(f"CLUSTER bench.{v} USING {v}_pkey;")
                vr["maintenance"] = {"command": f"CLUSTER bench.{v} USING {v}_pkey", "seconds": round(time.time() - t0, 3)}
                PROGRESS.done()
            if v == "clustered_repack":
                PROGRESS.start("maint", f"{v}: maintenance")
                step = "repack"
                t0 = time.time()
                psql(f"SELECT clustered_pg.repack('bench.{v}');")
                vr["maintenance"] = {"command": f"SELECT clustered_pg.repack('bench.{v}')", "seconds": round(time.time() - t0, 3)}
                PROGRESS.done()
            if v == "clustered_auto":
                PROGRESS.start("maint", f"{v}: waiting for the auto-repack worker")
                step = "auto-repack worker"
                vr["maintenance"] = dict(wait_for_worker(v, time.time()),
                                         command="none: the auto-repack worker (auto_repack_interval = %d s)"
                                         % AUTO_INTERVAL)
                PROGRESS.done()
            step = "VACUUM ANALYZE"
            vacuum_analyze(v)
            PROGRESS.start("measure", f"{v}: measure after load")
            step = "measure after load"
            vr["phases"]["after_load"] = measure_phase(v, "after_load", n, seed, reps, tps_secs, workdir)
            PROGRESS.done()
            save()
            PROGRESS.start("churn", f"{v}: churn")
            step = "churn"
            vr["churn"] = apply_churn(v, n)
            if v == "clustered_auto":
                step = "auto-repack worker after churn"
                vr["maintenance_after_churn"] = wait_for_worker(v, time.time())
            step = "VACUUM ANALYZE after churn"
            vacuum_analyze(v)
            PROGRESS.done()
            PROGRESS.start("measure", f"{v}: measure after churn")
            step = "measure after churn"
            vr["phases"]["after_churn"] = measure_phase(v, "after_churn", n + nnew, seed, reps, tps_secs, workdir)
            PROGRESS.done()
        except (SqlError, subprocess.SubprocessError) as e:
            PROGRESS.cur = None
            msg = getattr(e, "stderr", str(e))
            sql = getattr(e, "sql", "")
            log("ERROR in %s during %s: %s" % (v, step, msg))
            res["errors"].append({"variant": v, "step": step, "error": msg, "sql": sql[:4000]})
            vr["error"] = {"step": step, "error": msg}
            # drop what is left of the variant to free memory for the others
            try:
                psql(f"DROP TABLE IF EXISTS bench.{v};")
            except SqlError:
                time.sleep(5)   # server may be in crash recovery
            PROGRESS.todo = [s for s in PROGRESS.todo if not s[1].startswith(v + ":")]
        save()
        # free the variant's buffers for the next one?  No: tables stay, each
        # variant is measured right after its own load, the same way.
    res["elapsed_seconds"] = round(time.time() - T_START, 1)
    res["so_sha256_end"] = so_digest()
    if res["so_sha256_end"] != res["so_sha256_start"]:
        log("WARNING: clustered_pg.so was replaced during the run (another make install?)")
    save()
    shutil.rmtree(workdir, ignore_errors=True)
    log("measurements written to %s" % os.path.join(outdir, "results.json"))


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def short_error(msg):
    """The ERROR / DETAIL / HINT lines of a psql or pgbench failure (first
    occurrence of each), without pgbench's progress and summary lines."""
    keep, seen = [], set()
    for line in msg.splitlines():
        m = re.search(r"(ERROR|FATAL|PANIC|DETAIL|HINT):\s+(.*)", line)
        if m and line not in seen:
            seen.add(line)
            keep.append("%s: %s" % (m.group(1), m.group(2).strip()))
    return " ".join(keep) if keep else msg.strip()


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, float) and digits == 0 and abs(x) < 10:
        return "%.2f" % x
    if digits == 0:
        return "{:,}".format(int(round(x)))
    return ("{:,.%df}" % digits).format(x)


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    if r >= 100:
        return "%.0f×" % r
    if r >= 10:
        return "%.1f×" % r
    return "%.2f×" % r


def mb(b):
    return b / 1024 / 1024


def rows_per_page_ideal(res):
    for v in ("heap_cluster", "heap_btree"):
        ph = res["variants"].get(v, {}).get("phases", {}).get("after_load")
        if ph:
            return ph["rows_per_page"], v
    for v, vr in res["variants"].items():
        ph = vr.get("phases", {}).get("after_load")
        if ph:
            return ph["rows_per_page"], v
    return None, None


def phase_columns(res, phase, rpp):
    """List of (header, getter(variant_result) -> number or None, kind)."""
    cols = []
    cols.append(("load 1-row rows/s", lambda vr: vr.get("load", {}).get("single", {}).get("rows_per_s"), "higher"))
    cols.append(("load batch rows/s", lambda vr: vr.get("load", {}).get("batch", {}).get("rows_per_s"), "higher"))
    if phase == "after_churn":
        cols.append(("churn ops/s", lambda vr: vr.get("churn", {}).get("ops_per_s"), "higher"))

    def ph(vr):
        return vr.get("phases", {}).get(phase)
    cols.append(("heap MB", lambda vr: mb(ph(vr)["heap_bytes"]) if ph(vr) else None, "lower"))
    cols.append(("index MB", lambda vr: mb(ph(vr)["index_bytes"]) if ph(vr) else None, "lower"))
    cols.append(("id corr.", lambda vr: ph(vr)["correlation"] if ph(vr) else None, "higher"))
    for w in WIDTHS:
        label = "point" if w == 1 else "w=%s" % "{:,}".format(w)

        def q(vr, w=w):
            p = ph(vr)
            return p["queries"][str(w)] if p else None
        cols.append((f"{label} buffers", lambda vr, q=q: q(vr)["median_buffers"] if q(vr) else None, "lower"))
        cols.append((f"{label} ms", lambda vr, q=q: q(vr)["median_ms"] if q(vr) else None, "lower"))
        ideal = math.ceil(w / rpp) if rpp else None
        cols.append((f"{label} blocks/ideal({ideal})",
                     lambda vr, q=q, ideal=ideal: (q(vr)["median_blocks"] / ideal) if q(vr) and ideal else None,
                     "lower"))
    cols.append(("point TPS", lambda vr: ph(vr)["point_tps"] if ph(vr) else None, "higher"))
    return cols


def fmt_cell(header, x):
    if x is None:
        return "–"
    if header.endswith("ms"):
        return "%.3f" % x if x < 10 else "%.1f" % x
    if "MB" in header:
        return "%.2f" % x if x < 10 else "%.1f" % x
    if "corr" in header or "ideal" in header:
        return "%.3f" % x if "corr" in header else "%.2f" % x
    return fmt_num(x)


def build_tables(res):
    rpp, rpp_src = rows_per_page_ideal(res)
    md = []
    for phase in PHASES:
        cols = phase_columns(res, phase, rpp)
        present = [v for v in ALL_VARIANTS if v in res["variants"]]
        md.append(f"### {PHASE_TITLE[phase]}\n")
        md.append("| variant | " + " | ".join(c[0] for c in cols) + " |")
        md.append("|---|" + "---:|" * len(cols))
        base = res["variants"].get(BASELINE)
        for v in present:
            vr = res["variants"][v]
            if "error" in vr and phase not in vr.get("phases", {}):
                md.append(f"| {v} | " + " | ".join(["error"] * len(cols)) + " |")
                continue
            md.append(f"| **{v}** | " + " | ".join(fmt_cell(c[0], c[1](vr)) for c in cols) + " |")
            if base is not None and v != BASELINE:
                cells = []
                for c in cols:
                    try:
                        if "corr" in c[0]:
                            cells.append("–")
                            continue
                        cells.append(fmt_ratio(c[1](vr), c[1](base)))
                    except (KeyError, TypeError):
                        cells.append("–")
                md.append(f"| ↳ ÷ {BASELINE} | " + " | ".join(cells) + " |")
        md.append("")
        # plans
        md.append(f"Plans chosen ({PHASE_TITLE[phase].split(' (')[0].lower()}):\n")
        md.append("| variant | " + " | ".join(("point" if w == 1 else "w=%s" % "{:,}".format(w)) for w in WIDTHS) + " |")
        md.append("|---|" + "---|" * len(WIDTHS))
        for v in present:
            p = res["variants"][v].get("phases", {}).get(phase)
            if not p:
                continue
            md.append(f"| {v} | " + " | ".join(p["queries"][str(w)]["plan"] for w in WIDTHS) + " |")
        md.append("")
    return "\n".join(md), rpp, rpp_src


def index_detail(res):
    md = ["| variant | phase | index | access method | size MB |", "|---|---|---|---|---:|"]
    for v in ALL_VARIANTS:
        vr = res["variants"].get(v)
        if not vr:
            continue
        for phase in PHASES:
            p = vr.get("phases", {}).get(phase)
            if not p:
                continue
            for name, ix in p["indexes"].items():
                md.append(f"| {v} | {phase} | {name} | {ix['am']} | {mb(ix['bytes']):.3f} |")
    return "\n".join(md)


# Variants whose loads run the same code on the same data (they differ only
# in what happens after the load): their load rates are repeated samples.
SAME_LOAD = ("clustered", "clustered_repack", "clustered_auto")


def interleaved_md(res):
    """The interleaved load as a table (empty when it did not run)."""
    il = res.get("interleaved_load")
    if not il:
        return ""
    base, other = il["pair"]
    rows = [f"| phase | {base} rows/s | {other} rows/s | {other} ÷ {base} | per round |",
            "|---|---:|---:|---:|---|"]
    for ph, label in (("single", "single-row INSERTs (2 clients)"), ("batch", f"{BATCH}-row INSERT … SELECT")):
        p = il["phases"][ph]
        rows.append(f"| {label} | {p['rows_per_s'][base]:,.0f} | {p['rows_per_s'][other]:,.0f} | "
                    f"{p['ratio']:.2f}× | {p['round_ratio_min']:.2f}–{p['round_ratio_max']:.2f}× |")
    return (f"### Interleaved load\n\n"
            f"Insert throughput side by side: {il['rows_per_table']:,} rows of the same staging data into a fresh "
            f"`{base}` and a fresh `{other}` table, in {il['rounds']} rounds; in each round half the round's rows go "
            f"in by single-row INSERTs, the other half by batches, and the two tables take turns (which goes first "
            f"alternates), so load on the machine hits both alike. Ratios are of summed times; the last column is "
            f"the range of the per-round ratios.\n\n" + "\n".join(rows) + "\n\n")


def load_spread(res):
    """How far apart the load ratios of the SAME_LOAD variants are in this
    run: on a shared 2-core machine a difference smaller than this is noise."""
    base = res["variants"].get(BASELINE, {}).get("load", {})
    parts = []
    for phase, label in (("single", "single-row"), ("batch", "batch")):
        b = base.get(phase)
        rs = [res["variants"][v]["load"][phase]["rows_per_s"] / b["rows_per_s"]
              for v in SAME_LOAD
              if b and res["variants"].get(v, {}).get("load", {}).get(phase)]
        if len(rs) >= 2:
            parts.append(f"{label} {min(rs):.2f}–{max(rs):.2f}×")
    if not parts:
        return ""
    return (f"- Spread: {', '.join(SAME_LOAD)} load through the same code, yet their load ratios to heap_btree "
            f"in this run span {'; '.join(parts)}; differences smaller than that are noise of the machine.")


def findings(res, rpp):
    """Generated, from the numbers: where the clustered_pg variants are
    behind heap_btree or behind the DESIGN.md §5 targets."""
    out = []
    base = res["variants"].get(BASELINE)
    if not base or "after_load" not in base.get("phases", {}):
        return ["The baseline heap_btree was not measured; no comparison is possible."]
    for v in CPG_VARIANTS:
        vr = res["variants"].get(v)
        if vr is None:
            continue
        if "error" in vr:
            out.append(f"- **{v}** failed during *{vr['error']['step']}*: `{short_error(vr['error']['error'])[:600]}`")
            if not vr.get("phases"):
                continue
        items = []
        ls, bs = vr.get("load", {}).get("single"), base["load"].get("single")
        if ls and bs:
            r = ls["rows_per_s"] / bs["rows_per_s"]
            if r < 0.8:
                items.append(f"single-row insert throughput is {r:.2f}× heap_btree "
                             f"({ls['rows_per_s']:,.0f} vs {bs['rows_per_s']:,.0f} rows/s; target ≥ 0.8×)")
        lb, bb = vr.get("load", {}).get("batch"), base["load"].get("batch")
        if lb and bb:
            r = lb["rows_per_s"] / bb["rows_per_s"]
            if r < 1.0:
                items.append(f"batch insert throughput is {r:.2f}× heap_btree "
                             f"({lb['rows_per_s']:,.0f} vs {bb['rows_per_s']:,.0f} rows/s; target for bulk loads ≥ 1.0×)")
        for phase in PHASES:
            p, bp = vr.get("phases", {}).get(phase), base.get("phases", {}).get(phase)
            if not p or not bp:
                continue
            pname = "after load" if phase == "after_load" else "after churn"
            limit = 1.5 if phase == "after_churn" else (1.05 if v in ("clustered_repack", "clustered_auto") else 1.25)
            for w in WIDTHS:
                q, bq = p["queries"][str(w)], bp["queries"][str(w)]
                label = "point lookup" if w == 1 else f"range of {w:,} keys"
                if w == 1:
                    if q["median_buffers"] > 2:
                        items.append(f"{pname}, point lookup reads a median of {q['median_buffers']:g} shared buffers "
                                     f"(target ≤ 2; heap_btree {bq['median_buffers']:g}), plan {q['plan']}")
                else:
                    ideal = math.ceil(w / rpp)
                    ratio = q["median_blocks"] / ideal
                    if ratio > limit and v != "heap_ck":
                        items.append(f"{pname}, a {label} spans a median of {q['median_blocks']:g} heap blocks, "
                                     f"{ratio:.2f}× the ideal {ideal} (target ≤ {limit}×)")
                    if q["median_buffers"] > bq["median_buffers"] * 1.0001:
                        items.append(f"{pname}, a {label} reads {q['median_buffers']:g} shared buffers vs "
                                     f"{bq['median_buffers']:g} for heap_btree ({q['median_buffers'] / max(1, bq['median_buffers']):.2f}×)")
                if bq["median_ms"] and q["median_ms"] > bq["median_ms"] * 1.1:
                    items.append(f"{pname}, {label} median time {q['median_ms']:.3f} ms vs {bq['median_ms']:.3f} ms "
                                 f"for heap_btree ({q['median_ms'] / bq['median_ms']:.2f}×), plan {q['plan']}")
                if "row_count_mismatch" in q:
                    items.append(f"{pname}, {label}: the plan returned a different number of rows than "
                                 f"count(*) of the same predicate (wrong results), e.g. {q['row_count_mismatch'][0]}")
                # Same data everywhere: the row counts must equal heap_btree's.
                for s, bsmp in zip(q["samples"], bq["samples"]):
                    if s["lo"] == bsmp["lo"] and s["rows"] != bsmp["rows"]:
                        items.append(f"{pname}, {label} at id {s['lo']}: {s['rows']} rows vs {bsmp['rows']} "
                                     f"in heap_btree (wrong results)")
                        break
            if p["point_tps"] and bp["point_tps"] and p["point_tps"] < 0.9 * bp["point_tps"]:
                items.append(f"{pname}, point-lookup TPS is {p['point_tps']:,.0f} vs {bp['point_tps']:,.0f} "
                             f"({p['point_tps'] / bp['point_tps']:.2f}×)")
            btree_bytes = sum(ix["bytes"] for ix in bp["indexes"].values() if ix["am"] == "btree")
            ck_bytes = sum(ix["bytes"] for ix in p["indexes"].values() if ix["am"] == "clustered_pk_index")
            if btree_bytes and ck_bytes and ck_bytes > 0.02 * btree_bytes:
                items.append(f"{pname}, the clustered_pk_index is {ck_bytes / btree_bytes * 100:.1f} % of heap_btree's "
                             f"btree (target ≤ 2 %)")
            if p["heap_bytes"] > 1.05 * bp["heap_bytes"]:
                items.append(f"{pname}, the heap is {mb(p['heap_bytes']):.1f} MB vs {mb(bp['heap_bytes']):.1f} MB "
                             f"({p['heap_bytes'] / bp['heap_bytes']:.2f}×)")
        if items:
            out.append(f"- **{v}**:")
            out += [f"  - {i}" for i in items]
        else:
            out.append(f"- **{v}**: not behind heap_btree nor the §5 targets on any measured number.")
    il = res.get("interleaved_load")
    if il:
        for ph, label, target in (("single", "single-row", 0.8), ("batch", "batch", 1.0)):
            p = il["phases"][ph]
            if p["ratio"] < target:
                out.append(f"- Interleaved load: {il['pair'][1]} {label} insert throughput is {p['ratio']:.2f}× "
                           f"{il['pair'][0]} (per round {p['round_ratio_min']:.2f}–{p['round_ratio_max']:.2f}×; "
                           f"target ≥ {target}×)")
    spread = load_spread(res)
    if spread:
        out.append(spread)
    for v in ALL_VARIANTS:
        if v not in CPG_VARIANTS and v in res["variants"] and "error" in res["variants"][v]:
            e = res["variants"][v]["error"]
            out.append(f"- **{v}** (baseline) failed during *{e['step']}*: `{short_error(e['error'])[:600]}`")
    if not res["available"]["clustered_heap"]:
        out.append("- The `clustered_heap` table access method does not exist in this build, so the "
                   "`clustered`, `clustered_pk` and `clustered_repack` variants were not run: the table "
                   "order is not maintained by clustered_pg at all yet (only the sparse index exists).")
    elif not res["available"]["repack"]:
        out.append("- `clustered_pg.repack(regclass)` does not exist in this build; the `clustered_repack` "
                   "variant was not run.")
    return out


def plots(res, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001
        return "matplotlib is not available (%s): no plots" % e
    present = [v for v in ALL_VARIANTS if v in res["variants"] and res["variants"][v].get("phases")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    rpp, _ = rows_per_page_ideal(res)
    for ax, phase in zip(axes, PHASES):
        for v in present:
            p = res["variants"][v]["phases"].get(phase)
            if not p:
                continue
            ax.plot(WIDTHS, [p["queries"][str(w)]["median_buffers"] for w in WIDTHS], marker="o", label=v)
        if rpp:
            ax.plot(WIDTHS, [math.ceil(w / rpp) for w in WIDTHS], linestyle="--", color="grey",
                    label="ideal heap blocks")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("keys in range (1 = point lookup)")
        ax.set_title(PHASE_TITLE[phase].split(" (")[0])
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median shared buffers per query")
    axes[0].legend(fontsize=8)
    fig.suptitle("clustered_pg bench: N=%s, %s order, %s" % ("{:,}".format(res["params"]["N"]), res["params"]["order"],
                                                         res["postgres"]["version"].split(" on ")[0]))
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "buffers_by_width.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = range(len(present))
    single = [res["variants"][v].get("load", {}).get("single", {}).get("rows_per_s", 0) for v in present]
    batch = [res["variants"][v].get("load", {}).get("batch", {}).get("rows_per_s", 0) for v in present]
    wdt = 0.38
    b1 = ax.bar([x - wdt / 2 for x in xs], single, wdt, label="single-row INSERTs (2 clients)")
    b2 = ax.bar([x + wdt / 2 for x in xs], batch, wdt, label="%d-row batch INSERTs" % BATCH)
    ax.bar_label(b1, fmt="%.0f", fontsize=7)
    ax.bar_label(b2, fmt="%.0f", fontsize=7)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(present)
    ax.set_ylabel("rows/s")
    ax.set_title("Load throughput (N=%s, %s order)" % ("{:,}".format(res["params"]["N"]), res["params"]["order"]))
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "load_throughput.png"), dpi=110)
    plt.close(fig)
    return None


def loadavg_range(res):
    vals = []
    for vr in res["variants"].values():
        for p in vr.get("phases", {}).values():
            vals += [p.get("loadavg_1m_start"), p.get("loadavg_1m_end")]
    vals = [x for x in vals if x is not None]
    return "%.1f–%.1f" % (min(vals), max(vals)) if vals else "?"


def machine_md(res):
    m, pg = res["machine"], res["postgres"]
    lines = [f"- Date (UTC): {res['date']}; clustered_pg {res['extension_version']} at commit "
             f"`{res['git_commit']}`{' (with uncommitted changes in src/csrc/sql)' if res.get('git_dirty') else ''}",
             f"- CPU: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores; RAM {m.get('ram_gb', '?')} GB",
             f"- {pg['version']}",
             f"- N = {res['params']['N']:,} rows, {res['params']['order']} key order, seed {res['params']['seed']}, "
             f"{res['params']['queries_per_shape']} queries per shape, point-lookup TPS over "
             f"{res['params']['tps_seconds']} s (`pgbench -M prepared -c 2 -j 2`)",
             f"- Total measuring time: {res.get('elapsed_seconds', '?')} s",
             f"- 1-minute load average of the machine while measuring: {loadavg_range(res)} "
             f"(the bench itself keeps ~2 busy; more means other processes shared the 2 cores and times/TPS are noisier)",
             "- Settings: " + ", ".join(f"`{k}={v}`" for k, v in pg["settings"].items())]
    if "so_sha256_start" in res and res.get("so_sha256_start") != res.get("so_sha256_end"):
        lines.append(f"- **Warning:** the installed clustered_pg.so changed during this run "
                     f"({res.get('so_sha256_start')} → {res.get('so_sha256_end')}); variants may have run different builds.")
    return "\n".join(lines)


def lookup_section(outdir):
    """lookup.md of regress/bench/lookup_check.sh (already a '## ...'
    section with its own date and settings), or '' when it did not run."""
    try:
        with open(os.path.join(outdir, "lookup.md")) as f:
            return f.read().strip() + "\n\n"
    except OSError:
        return ""


def cmd_report():
    outdir = os.environ.get("BENCH_OUT", "bench-out")
    with open(os.path.join(outdir, "results.json")) as f:
        res = json.load(f)
    global WIDTHS
    WIDTHS = res["params"]["widths"]
    tables, rpp, rpp_src = build_tables(res)
    ideal_note = (f"Ideal blocks = ceil(w / rows_per_page), rows_per_page = {rpp:.2f} "
                  f"(live rows / heap pages of {rpp_src} after load)." if rpp else "")
    plot_err = plots(res, outdir)
    legend = (
        "Columns: load rows/s per phase (first half single-row INSERTs from 2 pgbench clients, second half "
        f"{BATCH}-row INSERT … SELECT batches); heap and index sizes (main fork); `pg_stats.correlation` of id; "
        "per query shape (point lookup `id = k`, ranges `id BETWEEN lo AND lo+w-1` at random positions) the median "
        "shared buffers (hit + read of the top plan node), median execution time, and median distinct heap blocks "
        "holding the range divided by the ideal; point-lookup TPS. Rows `↳ ÷ heap_btree` are ratios to heap_btree "
        "of the same run.")
    errors = ""
    if res.get("errors"):
        errors = "\n## Errors\n\n" + "\n".join(
            f"- {e['variant']} during {e['step']}: `{short_error(e['error'])[:600]}`" for e in res["errors"]) + "\n"
    md = (f"# clustered_pg benchmark results\n\n{machine_md(res)}\n\n{ideal_note}\n\n{legend}\n\n{tables}\n"
          f"{interleaved_md(res)}### Indexes\n\n{index_detail(res)}\n{errors}")
    lookup = lookup_section(outdir)
    if lookup:
        md += "\n" + lookup
    if plot_err:
        md += f"\n_{plot_err}_\n"
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(md)
    behind = findings(res, rpp) if rpp else ["No rows-per-page reference was measured."]
    if os.environ.get("BENCH_DOCS", "1") == "1":
        write_docs(res, tables, rpp, rpp_src, ideal_note, legend, behind, outdir, plot_err)
    sys.stderr.write("bench: wrote %s/results.md%s\n" % (outdir, "" if plot_err else " and PNG plots"))
    sys.stderr.write("bench: where clustered_pg is behind:\n" + "\n".join(behind) + "\n")


def write_docs(res, tables, rpp, rpp_src, ideal_note, legend, behind, outdir, plot_err):
    docs = os.path.join(REPO, "docs")
    os.makedirs(os.path.join(docs, "bench"), exist_ok=True)
    pngs = []
    if not plot_err:
        for p in ("buffers_by_width.png", "load_throughput.png"):
            shutil.copy(os.path.join(outdir, p), os.path.join(docs, "bench", p))
            pngs.append(p)
    conf = "\n".join(res["postgres"].get("postgresql_conf_added", []))
    vlist = ", ".join(f"`{v}`" for v in res["variants"])
    text = f"""# Benchmarks

<!-- Generated by regress/bench/bench.py from {os.path.basename(outdir)}/results.json. Do not edit by hand:
     re-run `make bench` instead. Every number below was measured on the machine described. -->

`make bench` loads the same data into several table/index variants in one
throwaway PostgreSQL cluster and measures them side by side against a plain
heap with a btree (`heap_btree`), the yardstick of DESIGN.md §5.

## How to run

```sh
make bench                          # N = 1,000,000 rows, random key order, PostgreSQL 18
BENCH_N=20000 make bench            # quick run
BENCH_PG=15 BENCH_ORDER=ascending make bench
```

| knob | default | meaning |
|---|---|---|
| `BENCH_N` | 1000000 | rows loaded into each variant |
| `BENCH_ORDER` | random | key order of the load: `random` (a permutation of 1..N by seed) or `ascending` |
| `BENCH_PG` | 18 | PostgreSQL major (15 or 18), installed by `regress/deps.sh` |
| `BENCH_PG_CONFIG` | – | explicit `pg_config` (overrides `BENCH_PG`) |
| `BENCH_VARIANTS` | all available | comma list of `heap_btree,heap_cluster,heap_ck,clustered,clustered_pk,clustered_repack,clustered_auto` |
| `BENCH_OUT` | `bench-out/` | output directory (git-ignored) |
| `BENCH_SEED` | 42 | seed of the key order, churn and query positions |
| `BENCH_QUERIES` | 20 | repetitions per query shape |
| `BENCH_TPS_SECONDS` | 10 | duration of the point-lookup pgbench |
| `BENCH_SKIP_BUILD` | 0 | 1: use the extension already installed |
| `BENCH_CK_WITH` | – | options of every `clustered_pk_index`, e.g. `split_threshold=8192` (default: the index defaults) |
| `BENCH_DOCS` | 1 | 0: do not rewrite this page and `docs/bench/*.png` |
| `BENCH_LOOKUP_N` | 1000000 | rows of the key-order lookup check (`regress/bench/lookup_check.sh`); 0 skips it |
| `BENCH_AB_N` | `BENCH_N` | rows per table of the interleaved load (heap_btree and clustered taking turns); 0 skips it |

Outputs in `BENCH_OUT`: `results.json` (everything, including every sample),
`results.md` (the tables below), `buffers_by_width.png`, `load_throughput.png`,
and from the lookup check `lookup.json` / `lookup.md` (the issue B section
below). Progress (phase, rows loaded, elapsed, ETA) goes to stderr.
`make bench` exits 1 when the lookup check fails (after writing everything);
`make bench-lookup` runs only that check, in a private copy of the same
PostgreSQL install with the same server settings.

### Variants

| variant | table | indexes | maintenance |
|---|---|---|---|
| `heap_btree` | heap | btree primary key | none |
| `heap_cluster` | heap | btree primary key | `CLUSTER` after the load (not after churn) |
| `heap_ck` | heap | `clustered_pk_index` only | none |
| `clustered` | `clustered_heap` | `clustered_pk_index` | none |
| `clustered_pk` | `clustered_heap` | btree primary key + `clustered_pk_index` | none |
| `clustered_repack` | `clustered_heap` | `clustered_pk_index` | `clustered_pg.repack()` after the load |
| `clustered_auto` | `clustered_heap` | `clustered_pk_index` with `auto_repack_interval = {AUTO_INTERVAL}` | none by hand: the auto-repack worker (naptime {AUTO_NAPTIME} s); measured once it has stopped moving rows, after the load and after churn |

Every other `clustered_pk_index` says `auto_repack_interval = 0`, so the
worker leaves it alone. The `clustered*` variants run only when the
`clustered_heap` access method exists, `clustered_repack` only when
`clustered_pg.repack(regclass)` exists, `clustered_auto` only when the
worker runs (`regress/bench/run.sh` preloads the library).
This run measured: {vlist}.

### Workload

Table `(id bigint, ts timestamptz, payload text)` with ~100-byte payloads.
Keys 1..N in {res['params']['order']} order (a permutation by `md5(seed:i)`,
from a staging table). The first half is loaded by single-row
`INSERT … SELECT … WHERE seq = nextval(…)` statements from 2 concurrent
pgbench clients ({SINGLE_PER_SCRIPT} statements per script, each its own
transaction; every key exactly once, verified), the second half by
{BATCH}-row `INSERT … SELECT` batches. Then `VACUUM ANALYZE` (statistics
target 1000 on id) and the measurements; then churn — 10 % updates (payload
changed), 5 % deletes, 5 % new keys N+1..1.05N, interleaved in a random order
in transactions of {CHURN_CHUNK} operations — `VACUUM ANALYZE`, and the
measurements again.

Per variant and phase: heap and index sizes, `pg_stats.correlation` of id,
and for point lookups and ranges of 100, 5,000 and 100,000 keys at random
positions (the same for every variant) the median execution time and shared
buffers (hit + read of the top node of `EXPLAIN (ANALYZE, BUFFERS)`), the
distinct heap blocks holding the range (`count(DISTINCT (ctid::text::point)[0])`)
versus the ideal, and the plan chosen; point-lookup TPS with
`pgbench -M prepared -T {res['params']['tps_seconds']} -c 2 -j 2`.

## Machine and settings

{machine_md(res)}

Lines added to `postgresql.conf` (the same for every variant; `fsync = off`
comes from `regress/with-cluster.sh`, autovacuum is off and every VACUUM /
ANALYZE is explicit):

```
{conf}
```

## Results

{ideal_note}

{legend}

{tables}
{interleaved_md(res)}### Indexes

{index_detail(res)}

"""
    text += lookup_section(outdir)
    if pngs:
        text += "## Plots\n\n"
        text += "![median shared buffers by range width](bench/buffers_by_width.png)\n\n"
        text += "![load throughput](bench/load_throughput.png)\n\n"
    else:
        text += f"_No plots: {plot_err}_\n\n"
    text += "## Where clustered_pg is behind\n\n"
    text += ("Generated from the numbers above: every clustered_pg variant compared with heap_btree of the same run "
             "and with the DESIGN.md §5 targets (range blocks ≤ 1.25× ideal without maintenance, ≤ 1.05× after "
             "repack, ≤ 1.5× after churn; point lookup ≤ 2 buffers; single-row inserts ≥ 0.8×; index ≤ 2 % of the "
             "btree). Times more than 10 % slower and TPS more than 10 % lower are listed too.\n\n")
    text += "\n".join(behind) + "\n"
    with open(os.path.join(docs, "benchmarks.md"), "w") as f:
        f.write(text)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("measure", "report"):
        sys.stderr.write("usage: bench.py measure|report\n")
        return 2
    if sys.argv[1] == "measure":
        cmd_measure()
    else:
        cmd_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())

# clustered_pg: PGXS build of the C shim linked with the Rust staticlib.
#
#   make && make install          build and install for $(PG_CONFIG)
#   make installcheck             pg_regress suites (sql/ + expected/)
#   make test                     everything, against PostgreSQL 15 and 18
#   make demo                     throwaway cluster + side-by-side demo
#   make concurrency-smoke        pgbench pressure, then invariant checks
#   make bench                    benchmark against plain heap + btree
#   make bench-lookup             only its issue B lookup check (key-order heap)
#
# PG_CONFIG=/path/to/pg_config selects the server for all of them.

PG_CONFIG ?= pg_config
# An absolute path: a PATH lookup inside cargo could pick another server.
PG_CONFIG_ABS := $(shell command -v $(PG_CONFIG))
PG_MAJOR := $(shell $(PG_CONFIG_ABS) --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

MODULE_big = clustered_pg
OBJS = csrc/shim.o csrc/index_am.o csrc/heap_util.o csrc/table_am.o csrc/range_scan.o csrc/repack.o csrc/repack_worker.o csrc/generic_wal.o csrc/recent_buffer.o
EXTENSION = clustered_pg
DATA = sql/clustered_pg--0.1.0.sql
PGFILEDESC = "clustered_pg - clustered tables"

REGRESS = locator boundary index_build index_scan ordered_scan range_scan verify table_am segment_map directory repack
REGRESS_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)
# Isolation specs (pg_isolation_regress) live in regress/specs, their
# expected output in regress/expected.
ISOLATION = concurrent_writes repack
ISOLATION_OPTS = --inputdir=$(srcdir)/regress --outputdir=$(CURDIR)/isolation_output

# One cargo target directory per major: the artifact hash is the same for
# both, and a shared directory would reuse the other major's bindings.
CARGO ?= cargo
CARGO_TARGET_DIR := $(CURDIR)/target/pg$(PG_MAJOR)
GENERATED_DIR := $(CARGO_TARGET_DIR)/include
RUST_LIB := $(CARGO_TARGET_DIR)/release/libclustered_pg.a

PG_CPPFLAGS = -I$(GENERATED_DIR) -I$(srcdir)/csrc
SHLIB_LINK = $(RUST_LIB) -Wl,--exclude-libs,ALL -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
EXTRA_CLEAN = $(GENERATED_DIR) results regression.diffs regression.out isolation_output

# The C shim has nothing worth inlining into JIT code; skip LLVM bitcode.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG_ABS) --pgxs)
include $(PGXS)

# PG 18's wheel was built with a clang-only warning flag that gcc 12 rejects.
override CFLAGS := $(filter-out -Wmissing-variable-declarations,$(CFLAGS)) -Werror=implicit-function-declaration
# The PG 18 wheel's Makefile.global lacks VPATH for out-of-tree builds.
VPATH = $(srcdir)

.PHONY: rust cargo-test clean-objs test demo concurrency-smoke bench bench-lookup lint FORCE

rust: $(RUST_LIB)

$(RUST_LIB): FORCE
	@test -n "$(PG_MAJOR)" || { echo "cannot run $(PG_CONFIG) (set PG_CONFIG)"; exit 1; }
	cd $(srcdir) && PG_CONFIG=$(PG_CONFIG_ABS) CPG_GENERATED_DIR=$(GENERATED_DIR) \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(CARGO) build --release --lib --quiet

csrc/shim.o csrc/index_am.o csrc/heap_util.o csrc/table_am.o csrc/range_scan.o csrc/repack.o csrc/repack_worker.o csrc/generic_wal.o csrc/recent_buffer.o: $(RUST_LIB)

cargo-test:
	cd $(srcdir) && PG_CONFIG=$(PG_CONFIG_ABS) CPG_GENERATED_DIR=$(GENERATED_DIR) \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(CARGO) test --lib

lint:
	cd $(srcdir) && $(CARGO) fmt --check && PG_CONFIG=$(PG_CONFIG_ABS) \
		CPG_GENERATED_DIR=$(GENERATED_DIR) CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) \
		$(CARGO) clippy --lib --quiet -- -D warnings

# Only the PGXS objects: switching majors must not throw away cargo caches.
clean-objs:
	rm -f csrc/*.o csrc/*.bc $(MODULE_big).so $(MODULE_big).a

test:
	$(srcdir)/regress/test-all.sh

demo:
	$(srcdir)/regress/demo.sh

concurrency-smoke:
	PG_CONFIG=$(PG_CONFIG_ABS) $(srcdir)/regress/concurrency-smoke.sh

bench:
	PG_CONFIG=$(PG_CONFIG_ABS) $(srcdir)/regress/bench/run.sh

bench-lookup:
	BENCH_LOOKUP_ONLY=1 PG_CONFIG=$(PG_CONFIG_ABS) $(srcdir)/regress/bench/run.sh

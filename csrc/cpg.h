/*
 * cpg.h: what every C file of the shim includes: the PostgreSQL headers
 * that declare the types named in the Rust exports, then the header
 * cbindgen generates from those exports.
 */
#ifndef CPG_H
#define CPG_H

#include "postgres.h"

#include "fmgr.h"
#include "access/amapi.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "clustered_pg_rs.h"

#endif

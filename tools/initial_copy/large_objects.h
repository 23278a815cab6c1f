// Large objects: logical decoding does not carry them, so they are copied (by the initial copy,
// at its snapshot) and re-synced (inside the cutover fence, or by a DBA with `verify
// --sync-large-objects`) by one routine: list both sides' pg_largeobject_metadata (OID, owner,
// ACL, comment), compare the contents of the OIDs on both sides by md5 computed server-side, then
// create what is missing, replace what differs and unlink what the source no longer has. Reads
// and writes are spread over `jobs` worker pairs of connections; many small objects go in one
// target transaction, so a kill leaves whole batches and running it again finishes the job.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pgbaton::tools::copy {

// One large object as pg_largeobject_metadata describes it, in a form comparable across clusters:
// `acl` is the ACL (the default when NULL) as sorted "GRANTEE:PRIVILEGE[*]" entries joined by
// ',', where GRANTEE is "=" for the owner, PUBLIC, or a quoted role name; grantors are left out.
struct LargeObjectMeta {
  uint32_t oid = 0;
  std::string owner;
  std::string acl;
  std::optional<std::string> comment;
};

struct LargeObjectSyncOptions {
  std::string source;     // libpq conninfo of the old cluster
  std::string target;     // libpq conninfo of the new cluster
  std::string snapshot;   // an exported snapshot to read the source at; "": its current state
  int jobs = 4;           // worker pairs of connections (at most one per batch)
  bool no_owner = false;  // objects on the target belong to the target user (copy --no-owner)
  bool dry_run = false;   // compare and report only; change nothing
  // Objects above this many differences are not listed in the report (counts stay exact).
  size_t max_reported = 10;
  size_t batch_objects = 64;                 // objects per target transaction (and per source read)
  std::string application_name = "pgbaton";  // shown in pg_stat_activity on both sides
  // Called after every committed batch with the number of batches committed so far (the copy's
  // progress and test hook). From worker threads, serialized.
  std::function<void(int batches_done, size_t objects)> on_batch_done;
  // Called once the work is known (objects to write, and how many batches); may be null.
  std::function<void(size_t objects, size_t batches)> on_plan;
};

struct LargeObjectSyncReport {
  size_t source_objects = 0;  // on the source (at the snapshot)
  size_t target_objects = 0;  // on the target before the sync
  size_t compared = 0;        // on both sides with the same metadata: contents compared by md5
  size_t missing = 0;         // on the source only: created
  size_t differing = 0;       // on both sides, content or owner/ACL/comment differ: replaced
  size_t extra = 0;           // on the target only: unlinked
  uint64_t bytes_written = 0;
  std::vector<std::string> examples;  // "large object 16400: content differs" (max_reported)
  int64_t list_ms = 0, digest_ms = 0, write_ms = 0;  // where the time went
  size_t differences() const { return missing + differing + extra; }
  // "1000 large objects on source, 998 on target: 3 created, 2 replaced, 1 unlinked, ..."; with
  // `compared_only`, "... 3 missing on target, 2 differing, 1 only on target, ...".
  std::string Summary(bool compared_only = false) const;
};

// Brings the target's large objects level with the source's (or, with dry_run, only says how
// they differ). Same OIDs on both sides (applications store them). Each source object is written
// with lo_from_bytea/lo_put in pieces, its owner (unless no_owner), ACL and comment set in the
// same target transaction. Errors: kPermission (reading pg_largeobject_metadata or an object's
// contents, or writing on the target), kNotFound (a role that owns or is granted an object is
// missing on the target), kSnapshotLost, kConnection (retryable), kServerError. Objects above
// 1 GB cannot be compared (lo_get's limit): kServerError naming the object.
Result<LargeObjectSyncReport> SyncLargeObjects(const LargeObjectSyncOptions& options);

// How many large objects `conninfo`'s database holds. Errors: the connection's.
Result<int64_t> CountLargeObjects(const std::string& conninfo, const std::string& label);

// The statements that give large object `oid`, freshly created (ACL NULL), the normalized ACL
// `acl` (LargeObjectMeta::acl) where the owner is `owner_sql` (a quoted role name, or
// CURRENT_USER): none for the default ACL; else REVOKE ALL from the owner, then one GRANT per
// entry. Errors: kInternal for an ACL string this module did not produce.
Result<std::vector<std::string>> AclStatements(uint32_t oid, const std::string& acl,
                                               const std::string& owner_sql);

}  // namespace pgbaton::tools::copy

// Large objects for the copy and cutover tests: a set of several sizes (empty, 1 byte, more than
// one 2 kB page, a few MB, and many small ones), owned by a non-superuser role, with ACLs and
// comments; and a listing that compares them across clusters.
#pragma once

#include <string>

#include "common/status.h"
#include "tests/support/pg_server.h"

namespace pgbaton::testing {

// The roles the large objects are owned by and granted to (run on both clusters, before).
extern const char* const kLargeObjectRolesSql;

// Creates the test large objects in `db`: OIDs 50001 (empty, commented), 50002 (1 byte, SELECT
// for PUBLIC), 50003 (5000 bytes, owned by lo_owner, SELECT for lo_reader), 50004 (about 3 MB,
// SELECT and UPDATE with grant option for lo_reader, commented), and `small` more of 16 bytes
// from OID 60001 (60001..60010 owned by lo_owner).
Status CreateLargeObjects(PgServer& server, const std::string& db, int small = 200);

// One line per large object, "oid owner acl comment md5(content) size", ordered by OID: equal
// listings mean identical large objects (grantors included).
Result<std::string> LargeObjectListing(PgServer& server, const std::string& db);

}  // namespace pgbaton::testing

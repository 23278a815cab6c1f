#include "tests/support/large_objects.h"

#include <fmt/format.h>

namespace pgbaton::testing {

const char* const kLargeObjectRolesSql =
    "DO $$ BEGIN "
    "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lo_owner') THEN "
    "CREATE ROLE lo_owner NOLOGIN; END IF; "
    "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lo_reader') THEN "
    "CREATE ROLE lo_reader NOLOGIN; END IF; END $$";

Status CreateLargeObjects(PgServer& server, const std::string& db, int small) {
  PGB_RETURN_IF_ERROR(server.Exec(kLargeObjectRolesSql, db));
  return server.Exec(
      fmt::format(
          "SELECT lo_create(50001);"
          "COMMENT ON LARGE OBJECT 50001 IS 'it''s empty';"
          "SELECT lo_from_bytea(50002, '\\x41'::bytea);"
          "GRANT SELECT ON LARGE OBJECT 50002 TO PUBLIC;"
          "SELECT lo_from_bytea(50003, convert_to(repeat('abcdefghij', 500), 'UTF8'));"
          "ALTER LARGE OBJECT 50003 OWNER TO lo_owner;"
          "GRANT SELECT ON LARGE OBJECT 50003 TO lo_reader;"
          "SELECT lo_from_bytea(50004, (SELECT string_agg(decode(md5(i::text), 'hex'), ''::bytea "
          "ORDER BY i) FROM generate_series(1, 200000) i));"
          "GRANT SELECT, UPDATE ON LARGE OBJECT 50004 TO lo_reader WITH GRANT OPTION;"
          "COMMENT ON LARGE OBJECT 50004 IS 'a few MB';"
          "SELECT lo_from_bytea(60000 + i, decode(md5(i::text), 'hex')) "
          "FROM generate_series(1, {}) i;"
          "DO $$ BEGIN FOR i IN 60001..least(60010, 60000 + {}) LOOP "
          "EXECUTE format('ALTER LARGE OBJECT %s OWNER TO lo_owner', i); END LOOP; END $$",
          small, small),
      db);
}

Result<std::string> LargeObjectListing(PgServer& server, const std::string& db) {
  return server.Query(
      "SELECT coalesce(string_agg(m.oid || ' ' || pg_get_userbyid(m.lomowner) || ' ' || "
      "coalesce(m.lomacl::text, '-') || ' ' || coalesce(obj_description(m.oid, "
      "'pg_largeobject'), '-') || ' ' || md5(lo_get(m.oid)) || ' ' || length(lo_get(m.oid)), "
      "E'\\n' ORDER BY m.oid), '') FROM pg_largeobject_metadata m",
      db);
}

}  // namespace pgbaton::testing

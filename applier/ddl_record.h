// DDL records (`--ddl replicate`): what the source's event trigger records for each DDL statement,
// inside the statement's own transaction, and how the applier turns one into the statement it
// replays on the target. A record travels as a transactional logical message with prefix
// kDdlMessagePrefix (sources 14+), or as a row inserted into kDdlLogTable (sources that cannot
// stream messages: 12 and 13); its content is the JSON object documented in
// docs/reference/queue-format.md. Everything here is pure (no I/O) and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pgbaton::applier {

inline constexpr const char* kDdlMessagePrefix = "pgbaton_ddl";
inline constexpr const char* kDdlLogSchema = "pgbaton";
inline constexpr const char* kDdlLogTable = "ddl_log";
inline constexpr int kDdlRecordVersion = 1;

// One object the statement created, altered or dropped (pg_event_trigger_ddl_commands() and, for
// drops, pg_event_trigger_dropped_objects()).
struct DdlObject {
  std::string type;      // object_type: "table", "index", "table column", "schema", ...
  std::string identity;  // object_identity, quoted the server's way: "Sales Data"."Order"
  std::string schema;    // schema_name (empty for objects outside a schema)
  // For objects of pg_class: the table's name (an index's own table), for filtering; else empty.
  std::string relation;
  bool operator==(const DdlObject&) const = default;
};

struct DdlRecord {
  int version = kDdlRecordVersion;
  std::string tag;          // the command tag: "ALTER TABLE", "CREATE TABLE AS", ...
  std::string command;      // current_query(): the client's query string as sent
  std::string search_path;  // current_setting('search_path') when the statement ran
  std::string role;         // current_user when the statement ran
  std::vector<DdlObject> objects;
  // CREATE TABLE AS / SELECT INTO only: the created table as a plain CREATE TABLE (built by the
  // trigger from the catalogue). Its rows arrive as inserts in the same transaction.
  std::string create_table;
  bool operator==(const DdlRecord&) const = default;
};

// The record as JSON (the trigger writes the same fields). Pure.
std::string EncodeDdlRecord(const DdlRecord& record);
// Parses a record. Errors: kQueueCorrupt naming what is wrong (not JSON, a field missing or of
// the wrong type, a version newer than this build reads).
Result<DdlRecord> DecodeDdlRecord(std::string_view json);

// The statements of a query string, split at top-level semicolons (outside quotes, dollar
// quotes, quoted identifiers and comments), each trimmed; empty statements are dropped.
std::vector<std::string> SplitStatements(std::string_view sql);

// The statement the applier runs on the target for `record`:
// - CREATE TABLE AS / SELECT INTO: `create_table` (the rows come as changes);
// - CONCURRENTLY dropped from CREATE INDEX, DROP INDEX, REINDEX and ALTER TABLE ... DETACH
//   PARTITION, which cannot run inside the transaction that also records the applier's position
//   (the target is not serving yet, so a plain build is fine);
// - anything else as executed on the source.
// Errors: kSchemaChanged when the command cannot be replayed by itself: its query string holds
// several statements (replaying it would run the others twice), or the command does not start as
// the command tag does (the DDL ran inside a function or a DO block, whose other statements'
// effects arrive as changes).
Result<std::string> ReplayStatement(const DdlRecord& record);

// Whether the record touches only objects of pgbaton's own schema (never replayed) or only
// temporary objects.
bool OnlyInternalObjects(const DdlRecord& record);

}  // namespace pgbaton::applier

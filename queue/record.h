// The record model: the contract between the decoder and the applier. The decoder turns the
// pgoutput stream into these values and appends them to a WorkQueue; the applier reads them back.
// Values travel in PostgreSQL text format; types are named, never identified by source OID alone.
// The byte encoding (codec.h) is versioned and documented in docs/reference/queue-format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sql_ident.h"
#include "common/types.h"

namespace pgbaton::queue {

// One column value of a tuple, with pgoutput's markers.
enum class ValueKind : uint8_t {
  kNull = 0,            // 'n'
  kUnchangedToast = 1,  // 'u': an unchanged TOASTed value the server did not send
  kText = 2,            // 't': PostgreSQL text format
  kBinary = 3,          // 'b': binary format (opt-in, only where both sides allow it)
};

struct Value {
  ValueKind kind = ValueKind::kNull;
  std::string data;  // empty unless kText / kBinary
  bool operator==(const Value&) const = default;
};

using Tuple = std::vector<Value>;

enum class ReplicaIdentity : uint8_t {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',
  kIndex = 'i',  // USING INDEX
};

struct Column {
  std::string name;
  // The type's namespace and name on the source, apart: {"pg_catalog", "int4"}, {"Shop Data",
  // "address"}; an array type by its own name ({"pg_catalog", "_int4"}). For a domain, pgoutput
  // names the domain's base type. Never joined into one string: a part may hold dots or quotes.
  QualifiedName type;
  uint32_t type_oid = 0;  // the source OID, for information only
  int32_t type_modifier = -1;
  bool is_key = false;  // part of the replica identity
  bool operator==(const Column&) const = default;
};

// A relation as the source described it. A new version is written whenever the source sends a
// different description (after DDL), so old records stay interpretable.
struct RelationDescriptor {
  RelationId id;         // source OID
  uint32_t version = 0;  // 1, 2, ... per relation id, assigned by the decoder
  std::string schema;    // namespace
  std::string name;
  ReplicaIdentity identity = ReplicaIdentity::kDefault;
  std::vector<Column> columns;
  bool operator==(const RelationDescriptor&) const = default;
};

enum class ChangeKind : uint8_t {
  kInsert = 1,
  kUpdate = 2,
  kDelete = 3,
  kTruncate = 4,
  kMessage = 5
};

// Flags of a TRUNCATE, as pgoutput sends them.
constexpr uint8_t kTruncateCascade = 1;
constexpr uint8_t kTruncateRestartIdentity = 2;

struct Change {
  ChangeKind kind = ChangeKind::kInsert;
  RelationId relation;            // insert, update, delete
  uint32_t relation_version = 0;  // the descriptor version this change was decoded with
  // UPDATE: the old key ('K') or the old full row ('O') when the source sent one; DELETE: always.
  std::optional<Tuple> old_tuple;
  bool old_is_key_only = false;    // true when old_tuple holds only the key columns ('K')
  std::optional<Tuple> new_tuple;  // insert, update
  // TRUNCATE
  std::vector<RelationId> truncated;  // with their versions in truncated_versions
  std::vector<uint32_t> truncated_versions;
  uint8_t truncate_flags = 0;
  // MESSAGE (pg_logical_emit_message, transactional ones only appear inside transactions)
  std::string message_prefix;
  std::string message_content;
  bool operator==(const Change&) const = default;
};

// The header of a committed source transaction. Its changes arrive as one or more chunks.
struct CommitRecord {
  Lsn commit_lsn;  // the queue key: strictly increasing in the queue
  Lsn end_lsn;     // the end of the commit record in WAL: confirm up to here
  Xid xid;
  PgTimestamp commit_time;
  std::string origin;  // the replication origin name on the source, if any
  Lsn origin_lsn;
  uint64_t change_count = 0;  // total changes over all chunks
  uint32_t chunk_count = 0;   // how many chunks hold the changes
  bool operator==(const CommitRecord&) const = default;
};

// Changes of one transaction, in order. A transaction of any size is written as a sequence of
// chunks, each bounded in bytes, so neither side must hold a large transaction in memory.
struct ChangeChunk {
  Xid xid;           // top-level transaction
  Xid subxid;        // the (sub)transaction these changes belong to (== xid if top level)
  uint32_t seq = 0;  // 0, 1, 2 ... within the top-level transaction
  std::vector<Change> changes;
  bool operator==(const ChangeChunk&) const = default;
};

}  // namespace pgbaton::queue

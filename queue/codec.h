// The byte encoding of queue records (format version 2): commit records, change chunks, relation
// descriptors. Every record is an envelope {format version, record type, compression, checksum,
// body}; bodies of chunks and relations are zstd-compressed when that pays. The same bytes are
// stored by the RocksDB backend and sent to Kafka. docs/reference/queue-format.md is the spec.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "queue/record.h"

namespace pgbaton::queue {

// The newest format this build writes and reads. Records of a newer version are refused with
// kQueueFormat; older ones are read. Version 2 (2026-12) stores a column's type as schema and
// name apart; version 1 stored one "schema.name" string (read by SplitV1TypeName).
constexpr uint8_t kFormatVersion = 2;

enum class RecordType : uint8_t {
  kCommit = 1,
  kChunk = 2,
  kRelation = 3,
  kDiscard = 4,  // Kafka only: "drop every chunk not yet committed" (the writer restarted)
  kTrim = 5,     // Kafka only: transactions at or before an LSN were trimmed
  kAbort = 6,    // Kafka only: drop the chunks of (xid, subxid); subxid == xid: the whole txn
};

struct EncodeOptions {
  int zstd_level = 1;  // zstd level for chunk and relation bodies (1: fast)
  // Bodies shorter than this are stored uncompressed: zstd's fixed cost per frame outweighs what
  // it saves on a small record, which the backends compress by block or batch instead (LZ4).
  size_t compress_min_bytes = 1024;
};

// Where a commit's chunks are stored. Part of the stored commit, not of CommitRecord: the RocksDB
// backend stores chunks that arrived with their commit under the commit LSN (txn_ref 0) and
// chunks of a transaction spread over several appends under a per-transaction number.
struct StoredCommit {
  CommitRecord commit;
  uint64_t txn_ref = 0;
};

// Envelope header as read from bytes, for tools and error messages.
struct EnvelopeInfo {
  uint8_t version = 0;
  RecordType type = RecordType::kCommit;
  bool compressed = false;
};

std::string EncodeCommit(const StoredCommit& commit);
std::string EncodeChunk(const ChangeChunk& chunk, const EncodeOptions& options = {});
std::string EncodeRelation(const RelationDescriptor& relation, const EncodeOptions& options = {});
// A record with only a header and an LSN/xid payload (Kafka's discard and trim markers).
std::string EncodeMarker(RecordType type, Lsn lsn);
std::string EncodeAbort(Xid xid, Xid subxid);

// Reads the envelope header and checks the checksum. Errors: kQueueCorrupt (bad checksum, short),
// kQueueFormat (a newer format version). `what` names the record in messages, e.g.
// "commit 16/B374D848".
Result<EnvelopeInfo> PeekEnvelope(std::string_view bytes, std::string_view what);

// Each decoder checks the envelope (as PeekEnvelope), the record type and the body's shape.
// Errors: kQueueCorrupt naming `what`, kQueueFormat.
Status DecodeCommit(std::string_view bytes, std::string_view what, StoredCommit* out);
Status DecodeChunk(std::string_view bytes, std::string_view what, ChangeChunk* out);
Status DecodeRelation(std::string_view bytes, std::string_view what, RelationDescriptor* out);
Status DecodeMarker(std::string_view bytes, std::string_view what, RecordType* type, Lsn* lsn);
Status DecodeAbort(std::string_view bytes, std::string_view what, Xid* xid, Xid* subxid);

// A format-1 column type "schema.name" split at its first dot ("pg_catalog.int4" ->
// {pg_catalog, int4}; no dot: pg_catalog). Format 1 did not quote, so a schema whose name holds
// a dot was ambiguous there; such queues are read as if the dot ended the schema.
QualifiedName SplitV1TypeName(std::string_view joined);

// Big-endian fixed-width integers: keys that sort as numbers.
void PutBigEndian64(std::string* out, uint64_t v);
void PutBigEndian32(std::string* out, uint32_t v);
uint64_t GetBigEndian64(const char* p);
uint32_t GetBigEndian32(const char* p);

}  // namespace pgbaton::queue

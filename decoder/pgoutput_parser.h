// The pgoutput parser: bytes of one logical replication message in, one typed message out.
// Pure: no I/O, no allocation beyond the returned values, never reads past the input. It knows
// every message of protocol versions 1 to 4 (PostgreSQL 10 to 18). Truncated or malformed input
// is a kProtocol error naming the message type and the byte offset, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "queue/record.h"

namespace pgbaton::decoder {

// A tuple as pgoutput sends it: per column a null / unchanged-TOAST / text / binary marker.
using TupleData = queue::Tuple;

struct BeginMsg {  // 'B'
  Lsn final_lsn;   // the commit LSN of the transaction
  PgTimestamp commit_time;
  Xid xid;
};
struct CommitMsg {  // 'C'
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time;
};
struct OriginMsg {  // 'O'
  Lsn origin_lsn;
  std::string name;
};
struct RelationColumn {
  uint8_t flags = 0;  // 1: part of the replica identity key
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};
struct RelationMsg {       // 'R'
  std::optional<Xid> xid;  // inside a streamed block
  RelationId id;
  std::string schema;  // "" means pg_catalog, as pgoutput sends it
  std::string name;
  uint8_t identity = 'd';
  std::vector<RelationColumn> columns;
};
struct TypeMsg {  // 'Y': only for types that are not built in
  std::optional<Xid> xid;
  uint32_t oid = 0;
  std::string schema;  // "" means pg_catalog
  std::string name;
};
struct InsertMsg {  // 'I'
  std::optional<Xid> xid;
  RelationId relation;
  TupleData new_tuple;
};
struct UpdateMsg {  // 'U'
  std::optional<Xid> xid;
  RelationId relation;
  char old_kind = 0;  // 0 (none), 'K' (old key) or 'O' (old full row)
  std::optional<TupleData> old_tuple;
  TupleData new_tuple;
};
struct DeleteMsg {  // 'D'
  std::optional<Xid> xid;
  RelationId relation;
  char old_kind = 'K';  // 'K' or 'O'
  TupleData old_tuple;
};
struct TruncateMsg {  // 'T'
  std::optional<Xid> xid;
  uint8_t flags = 0;  // queue::kTruncateCascade | queue::kTruncateRestartIdentity
  std::vector<RelationId> relations;
};
struct LogicalMsg {  // 'M': pg_logical_emit_message
  std::optional<Xid> xid;
  bool transactional = false;
  Lsn lsn;
  std::string prefix;
  std::string content;
};
struct StreamStartMsg {  // 'S'
  Xid xid;
  bool first_segment = false;
};
struct StreamStopMsg {};  // 'E'
struct StreamCommitMsg {  // 'c'
  Xid xid;
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time;
};
struct StreamAbortMsg {  // 'A'
  Xid xid;
  Xid subxid;  // == xid when the whole transaction aborted
  // Only with streaming = parallel (protocol 4): where and when the abort happened.
  std::optional<Lsn> abort_lsn;
  std::optional<PgTimestamp> abort_time;
};
struct BeginPrepareMsg {  // 'b'
  Lsn prepare_lsn;
  Lsn end_lsn;
  PgTimestamp prepare_time;
  Xid xid;
  std::string gid;
};
struct PrepareMsg {  // 'P' and, streamed, 'p' (Stream Prepare)
  bool streamed = false;
  uint8_t flags = 0;
  Lsn prepare_lsn;
  Lsn end_lsn;
  PgTimestamp prepare_time;
  Xid xid;
  std::string gid;
};
struct CommitPreparedMsg {  // 'K'
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time;
  Xid xid;
  std::string gid;
};
struct RollbackPreparedMsg {  // 'r'
  uint8_t flags = 0;
  Lsn prepare_end_lsn;
  Lsn rollback_end_lsn;
  PgTimestamp prepare_time;
  PgTimestamp rollback_time;
  Xid xid;
  std::string gid;
};

using PgOutputMessage =
    std::variant<BeginMsg, CommitMsg, OriginMsg, RelationMsg, TypeMsg, InsertMsg, UpdateMsg,
                 DeleteMsg, TruncateMsg, LogicalMsg, StreamStartMsg, StreamStopMsg, StreamCommitMsg,
                 StreamAbortMsg, BeginPrepareMsg, PrepareMsg, CommitPreparedMsg,
                 RollbackPreparedMsg>;

// The message's name for people ("insert", "stream commit", ...).
std::string_view MessageName(const PgOutputMessage& message);

// Parses pgoutput messages one at a time. Stateful only in one bit: whether it is inside a
// streamed block (between Stream Start and Stream Stop), where data messages carry an XID.
// Thread-compatible.
class PgOutputParser {
 public:
  // Parses one message (the payload of one XLogData). Errors: kProtocol "pgoutput: truncated
  // insert message at offset 9 (of 12 bytes)" or "unknown message type 'Z' at offset 0"; the
  // parser's state is unchanged by a failed call.
  Result<PgOutputMessage> Parse(std::string_view bytes);

  bool in_stream() const { return in_stream_; }
  // Forget the streamed-block state (after a reconnect).
  void Reset() { in_stream_ = false; }

 private:
  bool in_stream_ = false;
};

}  // namespace pgbaton::decoder

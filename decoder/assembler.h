// The assembler: parsed pgoutput messages in, queue records out. It versions relation
// descriptors (with type names), cuts each transaction's changes into chunks bounded in bytes,
// follows streamed in-progress transactions (including subtransaction aborts), and ends each
// transaction with its CommitRecord. Output accumulates in a RecordBatch the caller appends to
// the WorkQueue when it likes (group commit). No I/O except through the TypeResolver.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "decoder/pgoutput_parser.h"
#include "decoder/type_resolver.h"
#include "queue/record.h"
#include "queue/work_queue.h"

namespace pgbaton::decoder {

struct AssemblerOptions {
  // A chunk is closed once its changes reach this many bytes (about; one change may exceed it).
  size_t chunk_bytes = 1 << 20;
  // Transactions whose commit LSN is <= this are already in the queue: they are dropped.
  Lsn skip_through;
};

namespace internal {
// One open transaction of the assembler (outside the class so that std::optional and std::map
// of it are complete types for every compiler).
struct AssemblerTxn {
  Xid xid;
  bool skip = false;
  std::string origin;
  Lsn origin_lsn;
  uint32_t next_seq = 0;
  std::optional<queue::ChangeChunk> open;
  size_t open_bytes = 0;
  // Per subtransaction: changes and chunks emitted, so an abort can take them back.
  std::map<uint32_t, std::pair<uint64_t, uint32_t>> per_sub;
};
}  // namespace internal

class Assembler {
 public:
  // `types` must outlive the assembler. `known` are the descriptors already in the queue (every
  // version; the newest per relation is what new Relation messages are compared with).
  Assembler(TypeResolver* types, AssemblerOptions options,
            const std::vector<queue::RelationDescriptor>& known = {});

  // Feeds one message that started at `wal_start` in WAL; its tuples and strings are moved into
  // the records. Errors: kProtocol naming the message and the LSN (a change for an unknown
  // relation, a commit without a begin, a two-phase message), kNotFound / kConnection from the
  // type resolver.
  Status Add(PgOutputMessage&& message, Lsn wal_start);

  // The records produced so far and not yet taken, and their approximate size in bytes.
  const queue::RecordBatch& batch() const { return batch_; }
  size_t batch_bytes() const { return batch_bytes_; }
  // The end LSN of the last commit in the batch (Invalid if it holds none).
  Lsn batch_end_lsn() const { return batch_end_lsn_; }
  // Hands over the batch and starts a new one.
  queue::RecordBatch TakeBatch();

  // True between Begin and Commit of a transaction that is not streamed.
  bool in_transaction() const { return current_.has_value(); }
  // Streamed transactions begun and neither committed nor aborted.
  size_t open_streamed() const { return streamed_.size(); }
  // Transactions committed so far (including dropped duplicates: see skipped()).
  uint64_t committed() const { return committed_; }
  uint64_t skipped() const { return skipped_; }

  // Forgets every open transaction and the batch (after a reconnect: the server resends them).
  // skip_through is raised to `skip_through`. The relation versions become `known`, the
  // descriptors the queue holds: one assembled into the dropped batch never reached the queue,
  // and the server describes every relation again on the new connection, so it is emitted again.
  void Reset(Lsn skip_through, const std::vector<queue::RelationDescriptor>& known);

 private:
  using Txn = internal::AssemblerTxn;
  // Makes `known` (the queue's descriptors, every version) the relation versions to build on.
  void Remember(const std::vector<queue::RelationDescriptor>& known);

  Status AddChange(std::optional<Xid> stream_xid, queue::Change change, size_t bytes,
                   Lsn wal_start);
  Status OnRelation(const RelationMsg& m, Lsn wal_start);
  // An INSERT / UPDATE / DELETE of `relation` at its newest descriptor version, tuples not set.
  Result<queue::Change> RowChange(queue::ChangeKind kind, RelationId relation, Lsn wal_start) const;
  Result<uint32_t> VersionOf(RelationId id, const char* what, Lsn wal_start) const;
  Result<Txn*> TxnFor(std::optional<Xid> stream_xid, const char* what, Lsn wal_start);
  void CloseChunk(Txn* t);
  void Commit(Txn* t, Lsn commit_lsn, Lsn end_lsn, PgTimestamp time);

  TypeResolver* types_;
  AssemblerOptions options_;
  std::unordered_map<uint32_t, QualifiedName> type_messages_;            // from Type messages
  std::unordered_map<RelationId, queue::RelationDescriptor> relations_;  // newest versions
  std::optional<Txn> current_;        // a transaction that is not streamed
  std::map<uint32_t, Txn> streamed_;  // by top-level xid
  std::optional<Xid> stream_block_;   // inside Stream Start .. Stream Stop
  queue::RecordBatch batch_;
  size_t batch_bytes_ = 0;
  Lsn batch_end_lsn_;
  Lsn last_commit_lsn_;
  uint64_t committed_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace pgbaton::decoder

// Write sets: which rows a source transaction touches, as 64-bit xxHash values, so that the
// scheduler can run transactions on different connections only when they cannot interfere.
// Keys are shared (taken by any write to a relation, to a unique index) or exclusive (a row key,
// or a whole relation for TRUNCATE and for keyless UPDATE/DELETE). Two transactions conflict when
// they hold the same key and at least one holds it exclusively.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "applier/target_relation.h"
#include "queue/record.h"

namespace pgbaton::applier {

struct WriteKey {
  uint64_t hash = 0;
  bool exclusive = false;
  // The row key of a mergeable update (see Mergeable in target_relation.h): the index of that
  // change in its transaction, else -1. A conflict on such a key need not hold the whole
  // transaction back: the session sends that one update after the conflicting group committed.
  int32_t deferrable_change = -1;
};
using WriteSet = std::vector<WriteKey>;

// Adds the keys of one INSERT / UPDATE / DELETE:
// - shared on the relation and on each unique index it writes;
// - exclusive on the replica-identity key and on every unique index key of the old and new row;
// - exclusive on a unique index when the old row's values for it are unknown (UPDATE / DELETE
//   without a full old row): another transaction may be about to reuse the value;
// - exclusive on the whole relation for UPDATE / DELETE without a key (identity FULL) and for
//   relations with an expression or partial unique index.
// `change_index` is the change's index in its transaction, for deferrable keys.
void AddChangeKeys(const TargetRelation& rel, const queue::Change& change, WriteSet* out,
                   int change_index = -1);
// TRUNCATE: exclusive on each relation; with CASCADE, exclusive on everything.
void AddTruncateKeys(const std::vector<const TargetRelation*>& rels, uint8_t flags, WriteSet* out);
// The key every change holds shared (so that a TRUNCATE ... CASCADE can exclude all).
WriteKey GlobalKey(bool exclusive);

// Which uncommitted group holds which keys. Groups are numbered 1, 2, ... in commit order; a
// group commits only after every lower one. Not thread-safe (the coordinator's thread owns it).
class ConflictTracker {
 public:
  // Records that group `seq` holds `ws` and returns the highest other group (< seq, not yet
  // released) that holds a conflicting key, or 0 when none does. Groups must be acquired in
  // non-decreasing seq order. With `deferred`, conflicts on deferrable keys are not counted in
  // the result but listed there as (change index, group it must wait for).
  uint64_t Acquire(const WriteSet& ws, uint64_t seq,
                   std::vector<std::pair<int32_t, uint64_t>>* deferred = nullptr);
  // Forgets every key held only by groups <= committed_seq.
  void Release(uint64_t committed_seq);
  size_t size() const { return held_.size(); }

 private:
  struct Holders {
    uint64_t exclusive = 0;  // latest group holding the key exclusively
    uint64_t shared = 0;     // latest group holding it shared
  };
  std::unordered_map<uint64_t, Holders> held_;
  std::deque<std::pair<uint64_t, std::vector<uint64_t>>> by_group_;  // seq -> hashes it took
};

}  // namespace pgbaton::applier

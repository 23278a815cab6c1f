// The reverse stream of a cutover (--reverse): before writers reach the new cluster, a
// publication and a logical slot are created there and `pgbaton run` is started detached, from
// the new cluster back to the old one, so that the old cluster stays a fallback (cut back by
// running the cutover the other way). Changes the forward applier made on the new cluster carry
// its replication origin and are not streamed back (the new cluster's decoder asks for
// origin 'none', PostgreSQL 16+).
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace pgbaton::tools::cutover {

struct ReverseOptions {
  std::string new_conninfo;  // the reverse stream's source
  std::string old_conninfo;  // its target
  std::string queue_dir;     // its queue (default <queue-dir>.reverse)
  std::string name;          // slot, publication, origin and queue name (<name>_reverse)
  std::string binary;        // pgbaton to run; default /proc/self/exe
};

struct ReverseStarted {
  int pid = 0;
  std::string command;  // as run, conninfo passwords masked
  std::string log_path;
  bool created_publication = false;  // StartReverse created the publication (StopReverse drops it)
};

// Checks that the reverse stream can start: both clusters are PostgreSQL 16 or newer (origin
// filtering on both decoders, so nothing loops), wal_level = logical on the new cluster, no slot
// of that name yet. Errors: kVersion, kServerConfig, kSlotInUse.
Status CheckReverse(const ReverseOptions& options);
// One line saying what StartReverse does.
std::string DescribeReverse(const ReverseOptions& options);
// Creates the publication and slot on the new cluster and starts `pgbaton run` detached (its
// own session, output to <queue_dir>.log). Errors: the servers', kIo when it cannot start.
Result<ReverseStarted> StartReverse(const ReverseOptions& options);
// Undoes StartReverse when the cutover fails after it (writers stay on the old cluster, and the
// next attempt must be able to create the slot again): SIGTERM to the reverse `run`, SIGKILL if
// it is still there after `timeout`, then drops the slot (and the publication if StartReverse
// created it) on the new cluster. Its queue directory is left. Errors: the new cluster's
// (connection, kTimeout while the slot stays active), naming the slot to drop by hand.
Status StopReverse(const ReverseOptions& options, const ReverseStarted& started,
                   std::chrono::milliseconds timeout);

}  // namespace pgbaton::tools::cutover

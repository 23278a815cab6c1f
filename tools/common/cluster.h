// Cluster mode: the verbs that move data take `--databases all|a,b,c` and `--exclude-database
// PATTERN` and then do their work once per database, in one process. Logical decoding is per
// database, so each database is a migration of its own (its slot, publication, origin and queue,
// named from --name and the database); this layer picks the databases, names each one's parts
// and runs a verb's body for each, stopping every database when one fails.
//
// The queue directory of a cluster migration holds `cluster.json` (the databases it was made for)
// and one RocksDB queue per database under `databases/<migration name>/`
// (docs/reference/queue-format.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/common/migration_flags.h"

namespace pgbaton::tools {

struct ClusterFlags {
  // --databases: "all" (every database that accepts connections, less the templates and the
  // maintenance database "postgres" unless named) or a comma-separated list; "" = one database,
  // the conninfo's (no cluster mode).
  std::string databases;
  std::vector<std::string> exclude;  // --exclude-database: shell patterns (fnmatch), repeatable

  void Register(CLI::App* sub);
  bool enabled() const { return !databases.empty(); }
};

// One database of a cluster migration.
struct ClusterMember {
  std::string database;  // its name, the same on both sides
  std::string name;      // the migration's name for it: slot, publication, origin, queue
  MigrationStart start;  // the verb's start with conninfos, queue and check for this database
};

// How a verb meets the cluster's queue directory.
enum class ClusterUse {
  kCreate,    // copy, migrate: databases may be new to it (RecordClusterMembers adds them)
  kExisting,  // every other verb: each selected database must be in cluster.json, its queue made
  kCleanup,   // cleanup: cluster.json's databases as the flags select them, whether or not the
              // servers still have them (no server is read)
  kServers,   // verify, preflight: the source's databases as the flags select them (no queue)
};

// The migration name of `database` in the cluster migration `name`: "<name>_<database>" where the
// database's name is a valid slot name part ([a-z0-9_]); otherwise its letters and digits
// lowercased, the rest as '_', and 8 hex digits of a hash of the real name; at most 63 bytes.
std::string ClusterMemberName(const std::string& name, const std::string& database);

// The databases `flags` select, read on the source `start.source` names (its dbname is only the
// database to connect to first), each with its own start: conninfos naming the database, the
// queue directory under start.queue.dir, and the check. Writes nothing. Errors: kUsage (nothing
// selected, a name both listed and excluded, Kafka, a single-database queue in the directory),
// kNotFound (a listed database the source lacks; with kExisting, a selected database never copied;
// a database of cluster.json the source no longer has: dropped mid-migration), kQueueCorrupt
// (cluster.json), kConnection.
Result<std::vector<ClusterMember>> ResolveCluster(const ClusterFlags& flags,
                                                  const MigrationStart& start,
                                                  const std::string& name, ClusterUse use);

// Adds the members cluster.json in `queue_dir` does not list yet (copy and migrate, once their
// checks passed). Errors: kIo, kQueueCorrupt.
Status RecordClusterMembers(const std::string& queue_dir,
                            const std::vector<ClusterMember>& members);

// Removes `members` from cluster.json in `queue_dir` (cleanup, once each one's queue is gone);
// when none is left, removes cluster.json and the then empty directory. Returns whether the
// directory went. Errors: kIo, kQueueCorrupt.
Result<bool> ForgetClusterMembers(const std::string& queue_dir,
                                  const std::vector<ClusterMember>& members);

// The databases of the server `conninfo` names (`label`: "source", "target" in errors), in byte
// order; with `connectable_only`, those that accept connections and are no templates.
// Errors: kConnection, kAuthentication, the query's.
Result<std::vector<std::string>> ListDatabases(const std::string& conninfo,
                                               const std::string& label, bool connectable_only);

// Checks that every member's database exists on the target (start.target of the cluster).
// Errors: kNotFound naming the databases the target lacks, kConnection.
Status CheckTargetDatabases(const std::vector<ClusterMember>& members, const std::string& target);

// Runs `body` for each member: one after another (`parallel` false), or each on its own thread.
// A failure stops the rest (RequestStop(): the others' loops drain and end) and is returned with
// the database named; later failures of other members are logged. One after another, a signal
// between two members returns kInterrupted naming the next. Returns Ok when every body did.
Status ForEachMember(const std::vector<ClusterMember>& members, bool parallel,
                     const std::function<Status(const ClusterMember&)>& body);

}  // namespace pgbaton::tools

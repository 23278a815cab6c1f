// One globals sync, end to end: connect to both servers, check they are two clusters and the
// target is not older, read both sides' globals, diff them, check the target can create what is
// missing, and (with apply) bring the target level and read it again. `pgbaton globals` prints
// the outcome; a cluster copy or migrate runs it as its first step (the databases it will copy,
// the roles that own their objects) through GlobalsFlags.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "tools/globals_sync/diff.h"

namespace pgbaton::tools::globals {

struct SyncOptions {
  std::string source;  // conninfo of any database of the source cluster
  std::string target;  // conninfo of any database of the target cluster
  DiffOptions diff;
  bool apply = false;                                // bring the target level (superuser)
  std::string application_name = "pgbaton globals";  // on both connections
};

// What a sync found and did; filled as far as the sync got, also when it fails.
struct SyncOutcome {
  std::string sides;  // "source (host=... PostgreSQL 15) -> target (...)", passwords masked
  Drift drift;        // before any change
  bool applied = false;
  std::vector<Action> done;    // actions applied, in order (a failed apply: those before it)
  std::optional<Drift> rest;   // after an apply: what still differs (level unless moved meanwhile)
  bool synced_before = false;  // the target holds pgbaton's records of an earlier sync
};

// Runs the sync. Without apply, a target that is not level is still Ok (outcome->drift says
// what differs). Errors: the first blocker (kUsage, kNotFound, kUnsupported... naming the object;
// nothing changed); kNotFound (a database of options.diff.databases the source lacks); kVersion
// (target older); kPermission (apply without a superuser on the target); kGlobalsDrift (after an
// apply something still differs: something changed meanwhile); the apply's errors (databases
// created before a failing statement stay, the rest is rolled back); connection errors.
Status SyncGlobals(const SyncOptions& options, SyncOutcome* outcome);

// The first step of a cluster copy or migrate (`verb`): the sync with apply, each change, warning
// and blocker logged. Errors: those of SyncGlobals, the hint saying how to go on without it.
Status SyncBeforeCopy(const std::string& source, const std::string& target, const DiffOptions& diff,
                      const std::string& verb);

// The roles `globals --hold-logins` holds NOLOGIN on `target` whose intended state is LOGIN
// (pgbaton.held_logins), in name order; none when nothing was held. Errors: the queries'.
Result<std::vector<std::string>> ReadHeldLogins(PgConn& target);

// One printable line of an action: `create role "team_01": LOGIN ...` (never a verifier).
std::string ActionLine(const Action& action);

// The globals options of the verbs that run a sync as their first step (cluster copy, migrate):
// --hold-logins, --tablespace-map, --no-tablespaces, and --no-globals to leave the globals to the
// operator (the target then must have the databases and their owners already).
struct GlobalsFlags {
  std::string hold_logins;  // comma-separated names or globs
  std::vector<std::string> tablespace_map;
  bool no_tablespaces = false;
  bool skip = false;  // --no-globals

  // `offer_skip`: also --no-globals (the verbs for which the sync is a step, not the verb).
  void Register(CLI::App* sub, bool offer_skip);
  // The flags only mean something with --databases: given without it (`cluster` false), kUsage.
  Status CheckCluster(bool cluster) const;
  // The DiffOptions for `databases` (the cluster's selection; nullopt: every database). Errors:
  // kUsage (a bad mapping, --tablespace-map with --no-tablespaces).
  Result<DiffOptions> ToDiffOptions(std::optional<std::vector<std::string>> databases) const;
};

// The comma-separated list `text` without empty items.
std::vector<std::string> SplitList(const std::string& text);

}  // namespace pgbaton::tools::globals

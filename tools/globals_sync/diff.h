// What separates a target's globals from a source's: the drift. Diff compares two Globals (pure,
// no connection) and returns the actions that bring the target level, each with a printable
// description and its SQL (which may hold a password verifier: never print it), plus the
// warnings and the blockers (a tablespace without a mapping, a provider the target lacks) that
// stop an apply before it changes anything.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/globals_sync/globals.h"

namespace pgbaton::tools::globals {

struct DiffOptions {
  // --hold-logins: role names, or glob patterns (`*`, `?`), of roles created NOLOGIN on the target
  // with their intended LOGIN recorded. Roles already held on the target stay held. Default none.
  std::vector<std::string> hold_logins;
  // --tablespace-map old=new: the target tablespace for each source tablespace. Default none.
  std::map<std::string, std::string> tablespace_map;
  // --no-tablespaces: place everything in the target's default tablespace. Default off.
  bool no_tablespaces = false;
  // --databases a,b,c: the databases whose properties (and per-role settings in them) are
  // carried; nullopt (--databases all, the default) for every database but the templates.
  std::optional<std::vector<std::string>> databases;
};

struct Action {
  enum class Phase {
    kCreateDatabase,  // CREATE DATABASE, which cannot run in a transaction: run first, one by one
    kTransaction,     // everything else, in one transaction
  };
  Phase phase = Phase::kTransaction;
  std::string object;  // `role "team_01"`, `database "app"`, `membership of "team_01" in "team"`
  std::string change;  // create, alter, drop, grant, revoke, set, reset, comment
  std::string detail;  // what changes, for people; never a password or verifier
  std::vector<std::string> sql;  // the statements; may hold a verifier: never printed
  std::string database;          // kCreateDatabase: the database's name
};

struct Drift {
  int target_major = 0;
  std::vector<Action> actions;        // in the order they must run
  std::vector<std::string> warnings;  // carried on, but said (a password not carried, ...)
  std::vector<Status> blockers;       // stop an apply before anything changes
  std::vector<std::string> notes;     // not drift: held logins, roles left alone

  // Bookkeeping an apply records on the target, in the same transaction.
  std::vector<std::string> synced_roles;           // roles this sync created or brought level
  std::map<std::string, bool> held_logins;         // held role -> its intended LOGIN
  std::vector<std::string> forget_roles;           // dropped: remove from the records
  std::vector<std::string> passwords_not_carried;  // LOGIN roles whose verifier was unreadable

  bool level() const { return actions.empty(); }
};

// Compares `source` with `target` under `options`. Pure and thread-safe. Predefined roles and
// the bootstrap superuser are never created or dropped; a role only on the target is dropped
// only when target.synced_roles records it (and then not while it owns objects: a warning says
// what to do); databases are never dropped.
Drift Diff(const Globals& source, const Globals& target, const DiffOptions& options);

// Whether `role` matches one of `patterns` (exact names, or globs with `*` and `?`).
bool MatchesAny(const std::string& role, const std::vector<std::string>& patterns);

// Parses "old=new" of --tablespace-map. Errors: kUsage naming the text.
Result<std::pair<std::string, std::string>> ParseTablespaceMapping(const std::string& text);

}  // namespace pgbaton::tools::globals

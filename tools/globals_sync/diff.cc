// The comparison. Actions are produced in the order an apply must run them: databases first
// (CREATE DATABASE cannot run in a transaction), then in one transaction the roles, their
// settings, the memberships, the databases' properties, and the drops last.
#include "tools/globals_sync/diff.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "common/sql_ident.h"
#include "tools/globals_sync/sql.h"

namespace pgbaton::tools::globals {

bool MatchesAny(const std::string& role, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (p == role) return true;
    if (p.find_first_of("*?") != std::string::npos && fnmatch(p.c_str(), role.c_str(), 0) == 0)
      return true;
  }
  return false;
}

Result<std::pair<std::string, std::string>> ParseTablespaceMapping(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Status::Error(ErrorCode::kUsage,
                         fmt::format("--tablespace-map must be OLD=NEW, not \"{}\"", text),
                         "e.g. --tablespace-map fast_ssd=pg_default");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

namespace {

// A name as the report shows it: always quoted, inner quotes doubled ("quo""te").
std::string Q(const std::string& name) { return QuoteIdent(name); }

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + Q(n);
  return out;
}

std::string YesNo(bool b) { return b ? "yes" : "no"; }

// The differences between two roles' attributes, "login: no -> yes; connection limit: -1 -> 5".
std::string AttributeChanges(const Role& want, const Role& have, bool want_login) {
  std::vector<std::string> c;
  auto flag = [&](const char* name, bool w, bool h) {
    if (w != h) c.push_back(fmt::format("{}: {} -> {}", name, YesNo(h), YesNo(w)));
  };
  flag("superuser", want.superuser, have.superuser);
  flag("inherit", want.inherit, have.inherit);
  flag("createrole", want.createrole, have.createrole);
  flag("createdb", want.createdb, have.createdb);
  flag("login", want_login, have.login);
  flag("replication", want.replication, have.replication);
  flag("bypassrls", want.bypassrls, have.bypassrls);
  if (want.connection_limit != have.connection_limit)
    c.push_back(
        fmt::format("connection limit: {} -> {}", have.connection_limit, want.connection_limit));
  if (want.valid_until != have.valid_until)
    c.push_back(fmt::format("valid until: {} -> {}", have.valid_until.value_or("never"),
                            want.valid_until.value_or("never")));
  std::string out;
  for (const std::string& s : c) out += (out.empty() ? "" : "; ") + s;
  return out;
}

std::string Attributes(const Role& r, bool login) {
  std::string out = login ? "LOGIN" : "NOLOGIN";
  if (r.superuser) out += " SUPERUSER";
  if (!r.inherit) out += " NOINHERIT";
  if (r.createrole) out += " CREATEROLE";
  if (r.createdb) out += " CREATEDB";
  if (r.replication) out += " REPLICATION";
  if (r.bypassrls) out += " BYPASSRLS";
  if (r.connection_limit >= 0) out += fmt::format(" CONNECTION LIMIT {}", r.connection_limit);
  if (r.valid_until) out += " VALID UNTIL " + *r.valid_until;
  return out;
}

std::string SettingText(const Setting& s) {
  return fmt::format("{} = {}{}", s.name, s.value,
                     s.database.empty() ? "" : " in database " + Q(s.database));
}

std::string MembershipOptions(const Membership& m, int target_major) {
  if (target_major < 16) return fmt::format("admin: {}", YesNo(m.admin));
  return fmt::format("admin: {}, inherit: {}, set: {}", YesNo(m.admin), YesNo(m.inherit),
                     YesNo(m.set));
}

bool SameMembership(const Membership& a, const Membership& b, int target_major) {
  if (a.admin != b.admin) return false;
  return target_major < 16 || (a.inherit == b.inherit && a.set == b.set);
}

std::vector<AclItem> DefaultAcl(const std::string& owner) {
  std::vector<AclItem> acl = {{"", "CONNECT", false},
                              {"", "TEMPORARY", false},
                              {owner, "CONNECT", false},
                              {owner, "CREATE", false},
                              {owner, "TEMPORARY", false}};
  std::sort(acl.begin(), acl.end());
  return acl;
}

std::string AclText(const AclItem& a) {
  return fmt::format("{} to {}{}", a.privilege, a.grantee.empty() ? "PUBLIC" : Q(a.grantee),
                     a.grantable ? " with grant option" : "");
}

Action Act(std::string object, std::string change, std::string detail,
           std::vector<std::string> sql) {
  Action a;
  a.object = std::move(object);
  a.change = std::move(change);
  a.detail = std::move(detail);
  a.sql = std::move(sql);
  return a;
}

class Differ {
 public:
  Differ(const Globals& s, const Globals& t, const DiffOptions& o) : src_(s), tgt_(t), opt_(o) {
    d_.target_major = t.major;
    for (const Role& r : s.roles)
      if (r.bootstrap) src_bootstrap_ = r.name;
    for (const Role& r : t.roles)
      if (r.bootstrap) tgt_bootstrap_ = r.name;
  }

  Drift Run() {
    Tablespaces();
    Roles();
    Memberships();
    Databases();
    Drops();
    for (auto* list : {&creates_, &roles_, &settings_, &members_, &databases_, &drops_})
      for (Action& a : *list) d_.actions.push_back(std::move(a));
    return std::move(d_);
  }

 private:
  bool InScope(const std::string& db) const {
    if (!opt_.databases) return true;
    return std::find(opt_.databases->begin(), opt_.databases->end(), db) != opt_.databases->end();
  }
  // A database that will exist on the target after the apply.
  bool OnTarget(const std::string& db) const {
    return InScope(db) && (tgt_.FindDatabase(db) || src_.FindDatabase(db));
  }
  // The source's bootstrap superuser is the target's, whatever each is called.
  std::string MapRole(const std::string& name) const {
    return name == src_bootstrap_ && !tgt_bootstrap_.empty() ? tgt_bootstrap_ : name;
  }
  bool Managed(const Role& r) const { return !r.predefined && !r.bootstrap; }
  bool Held(const std::string& name) const {
    return MatchesAny(name, opt_.hold_logins) || tgt_.held_logins.count(name) > 0;
  }
  // The target tablespace for source tablespace `ts`: itself when default, the mapping, or ""
  // (the target's default) with --no-tablespaces. nullopt: not mapped (a blocker says so).
  std::optional<std::string> MapTablespace(const std::string& ts) const {
    if (ts.empty() || ts == "pg_default") return std::string();
    if (opt_.no_tablespaces) return std::string();
    auto it = opt_.tablespace_map.find(ts);
    if (it == opt_.tablespace_map.end()) return std::nullopt;
    return it->second == "pg_default" ? std::string() : it->second;
  }

  void Tablespaces() {
    for (const auto& [from, to] : opt_.tablespace_map) {
      bool exists = to == "pg_default";
      for (const Tablespace& t : tgt_.tablespaces) exists = exists || t.name == to;
      if (!exists) {
        d_.blockers.push_back(Status::Error(
            ErrorCode::kGlobalsUnsupported,
            fmt::format("--tablespace-map {}={}: the target has no tablespace {}", from, to, Q(to)),
            fmt::format("create it on the target first (CREATE TABLESPACE {} LOCATION '...')",
                        QuoteIdent(to))));
      }
    }
    for (const Tablespace& ts : src_.tablespaces) {
      std::vector<std::string> users;
      for (const std::string& db : ts.used_by)
        if (InScope(db)) users.push_back(db);
      if (users.empty()) continue;
      if (opt_.no_tablespaces) {
        d_.warnings.push_back(fmt::format(
            "tablespace {} on source (used by database {}) is not carried (--no-tablespaces): "
            "the target's default tablespace holds what it held",
            Q(ts.name), Names(users)));
      } else if (!MapTablespace(ts.name)) {
        d_.blockers.push_back(Status::Error(
            ErrorCode::kGlobalsUnsupported,
            fmt::format("tablespace {} on source is used by database {} and has no mapping",
                        Q(ts.name), Names(users)),
            fmt::format("map it to a tablespace of the target with --tablespace-map {}=NEW "
                        "(pg_default, or one created there first), or pass --no-tablespaces",
                        ts.name)));
      }
    }
  }

  // The settings of `r` this sync carries: every-database ones and those of databases in
  // scope; default_tablespace follows the tablespace mapping.
  std::vector<Setting> WantedSettings(const Role& r) {
    std::vector<Setting> out;
    for (Setting s : r.settings) {
      if (!s.database.empty() && !OnTarget(s.database)) continue;
      if (s.name == "default_tablespace" && !s.value.empty()) {
        std::optional<std::string> to = MapTablespace(s.value);
        if (!to) {
          d_.blockers.push_back(Status::Error(
              ErrorCode::kGlobalsUnsupported,
              fmt::format("role {} has default_tablespace = {} and that tablespace has no mapping",
                          Q(r.name), s.value),
              fmt::format("pass --tablespace-map {}=NEW or --no-tablespaces", s.value)));
          continue;
        }
        if (to->empty() && opt_.no_tablespaces) {
          d_.warnings.push_back(
              fmt::format("role {}: setting default_tablespace = {} not carried (--no-tablespaces)",
                          Q(r.name), s.value));
          continue;
        }
        s.value = to->empty() ? "pg_default" : *to;
      }
      out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<Setting> TargetSettings(const Role* t) {
    std::vector<Setting> out;
    if (!t) return out;
    for (const Setting& s : t->settings)
      if (s.database.empty() || InScope(s.database)) out.push_back(s);
    return out;
  }

  void Roles() {
    bool carry_passwords = src_.passwords_readable && tgt_.passwords_readable;
    for (const Role& r : src_.roles) {
      if (!Managed(r)) continue;
      const Role* t = tgt_.FindRole(r.name);
      if (t && !Managed(*t)) {
        d_.warnings.push_back(fmt::format(
            "role {} is the target's bootstrap superuser or a predefined role there: not synced",
            Q(r.name)));
        continue;
      }
      bool held = Held(r.name);
      bool want_login = r.login && !held;
      std::string obj = "role " + Q(r.name);
      if (held) {
        d_.held_logins[r.name] = r.login;
        if (r.login)
          d_.notes.push_back(obj +
                             " is held NOLOGIN on the target (intended LOGIN is recorded "
                             "in " +
                             std::string(kHeldLoginsTable) + ")");
      }
      if (r.login && !src_.passwords_readable) d_.passwords_not_carried.push_back(r.name);
      d_.synced_roles.push_back(r.name);
      if (!t) {
        Action a = Act(obj, "create", Attributes(r, want_login), {});
        a.sql.push_back(CreateRoleSql(r, held));
        if (carry_passwords && r.password) {
          a.sql.push_back(RolePasswordSql(r.name, r.password));
          a.detail += ", password verifier carried";
        }
        if (r.comment) {
          a.sql.push_back(CommentSql("ROLE", r.name, r.comment));
          a.detail += ", comment";
        }
        roles_.push_back(std::move(a));
      } else {
        std::string changes = AttributeChanges(r, *t, want_login);
        if (!changes.empty()) roles_.push_back(Act(obj, "alter", changes, {AlterRoleSql(r, held)}));
        if (carry_passwords && r.password != t->password) {
          roles_.push_back(Act(obj, "alter",
                               r.password ? "password verifier changed" : "password removed",
                               {RolePasswordSql(r.name, r.password)}));
        }
        if (r.comment != t->comment) {
          roles_.push_back(Act(obj, "comment", r.comment ? "comment changed" : "comment removed",
                               {CommentSql("ROLE", r.name, r.comment)}));
        }
      }
      RoleSettings(r, t, obj);
    }
    if (!d_.passwords_not_carried.empty()) {
      d_.warnings.push_back(fmt::format(
          "passwords of role {} could not be carried: role {} on source may not read pg_authid; "
          "set each on the target (ALTER ROLE name PASSWORD '...', e.g. with psql's \\password), "
          "or run globals again with a superuser on the source",
          Names(d_.passwords_not_carried), Q(src_.current_user)));
    }
  }

  void RoleSettings(const Role& r, const Role* t, const std::string& obj) {
    std::vector<Setting> want = WantedSettings(r);
    std::vector<Setting> have = TargetSettings(t);
    auto key = [](const Setting& s) { return std::make_pair(s.database, s.name); };
    for (const Setting& s : want) {
      auto it = std::find_if(have.begin(), have.end(),
                             [&](const Setting& h) { return key(h) == key(s); });
      if (it != have.end() && it->value == s.value) continue;
      settings_.push_back(Act(obj, "set", SettingText(s), {SetSql(r.name, s)}));
    }
    for (const Setting& h : have) {
      bool wanted =
          std::any_of(want.begin(), want.end(), [&](const Setting& s) { return key(s) == key(h); });
      if (wanted) continue;
      settings_.push_back(Act(obj, "reset",
                              h.name + (h.database.empty() ? "" : " in database " + Q(h.database)),
                              {ResetSql(r.name, h)}));
    }
  }

  void Memberships() {
    std::set<std::string> managed;
    for (const Role& r : src_.roles)
      if (Managed(r)) managed.insert(r.name);
    // One membership per (role, member): 16+ may hold one grant per grantor.
    std::map<std::pair<std::string, std::string>, Membership> want, have;
    for (const Membership& m : src_.memberships) {
      if (!managed.count(m.member)) continue;
      const Role* role = src_.FindRole(m.role);
      if (role && role->bootstrap) continue;
      if (role && role->predefined && !tgt_.FindRole(m.role)) {
        d_.warnings.push_back(fmt::format(
            "membership of {} in the predefined role {} is not carried: PostgreSQL {} has no "
            "role {}",
            Q(m.member), Q(m.role), tgt_.major, Q(m.role)));
        continue;
      }
      const Role* member = src_.FindRole(m.member);
      if (tgt_.major < 16 && src_.major >= 16 && member &&
          (m.inherit != member->inherit || !m.set)) {
        d_.warnings.push_back(fmt::format(
            "membership of {} in {}: PostgreSQL {} has no per-grant INHERIT/SET options; "
            "carried with ADMIN only (inherit follows the role's {})",
            Q(m.member), Q(m.role), tgt_.major, member->inherit ? "INHERIT" : "NOINHERIT"));
      }
      want.emplace(std::make_pair(m.role, m.member), m);
    }
    for (const Membership& m : tgt_.memberships)
      if (managed.count(m.member)) have.emplace(std::make_pair(m.role, m.member), m);
    for (const auto& [key, m] : want) {
      std::string obj = fmt::format("membership of {} in {}", Q(m.member), Q(m.role));
      auto it = have.find(key);
      if (it == have.end()) {
        members_.push_back(
            Act(obj, "grant", MembershipOptions(m, tgt_.major), {GrantSql(m, tgt_.major)}));
      } else if (!SameMembership(m, it->second, tgt_.major)) {
        members_.push_back(Act(
            obj, "alter",
            MembershipOptions(it->second, tgt_.major) + " -> " + MembershipOptions(m, tgt_.major),
            {RevokeSql(it->second, tgt_.major), GrantSql(m, tgt_.major)}));
      }
    }
    for (const auto& [key, m] : have) {
      if (want.count(key)) continue;
      const Role* role = tgt_.FindRole(m.role);
      if (role && role->bootstrap) continue;
      members_.push_back(Act(fmt::format("membership of {} in {}", Q(m.member), Q(m.role)),
                             "revoke", "not on the source", {RevokeSql(m, tgt_.major)}));
    }
  }

  void Databases() {
    for (const Database& s : src_.databases) {
      if (!InScope(s.name)) continue;
      std::string obj = "database " + Q(s.name);
      std::string owner = MapRole(s.owner);
      const Database* existing = tgt_.FindDatabase(s.name);
      Database t;
      if (!existing) {
        std::optional<std::string> ts = MapTablespace(s.tablespace);
        if (!ts) continue;  // Tablespaces() reported it
        Result<std::string> sql = CreateDatabaseSql(s, *ts, tgt_.major);
        if (!sql.ok()) {
          d_.blockers.push_back(sql.status());
          continue;
        }
        std::string locale = s.provider == 'i'   ? "ICU locale " + s.locale
                             : s.provider == 'b' ? "builtin locale " + s.locale
                                                 : "locale " + s.collate + "/" + s.ctype;
        creates_.push_back({Action::Phase::kCreateDatabase,
                            obj,
                            "create",
                            fmt::format("encoding {}, {}{}", s.encoding, locale,
                                        ts->empty() ? "" : ", tablespace " + Q(*ts)),
                            {*sql},
                            s.name});
        // What the new database will look like: the applying role's, with the default ACL.
        t.name = s.name;
        t.owner = tgt_.current_user;
        t.acl = DefaultAcl(t.owner);
      } else {
        t = *existing;
        if (t.encoding != s.encoding || t.collate != s.collate || t.ctype != s.ctype ||
            t.provider != s.provider || t.locale != s.locale) {
          d_.warnings.push_back(fmt::format(
              "{} exists on the target with encoding {}, locale {}/{} {}, the source's has {}, "
              "{}/{} {}: pgbaton does not change an existing database's encoding or locale",
              obj, t.encoding, t.collate, t.ctype, t.locale, s.encoding, s.collate, s.ctype,
              s.locale));
        }
      }
      if (t.owner != owner) {
        databases_.push_back(Act(
            obj, "alter", fmt::format("owner: {} -> {}", Q(t.owner), Q(owner)),
            {fmt::format("ALTER DATABASE {} OWNER TO {}", QuoteIdent(s.name), QuoteIdent(owner))}));
        // ALTER ... OWNER moves the old owner's privileges to the new one.
        for (AclItem& a : t.acl)
          if (a.grantee == t.owner) a.grantee = owner;
        std::sort(t.acl.begin(), t.acl.end());
      }
      if (t.connection_limit != s.connection_limit) {
        databases_.push_back(
            Act(obj, "alter",
                fmt::format("connection limit: {} -> {}", t.connection_limit, s.connection_limit),
                {fmt::format("ALTER DATABASE {} WITH CONNECTION LIMIT {}", QuoteIdent(s.name),
                             s.connection_limit)}));
      }
      for (const Setting& set : s.settings) {
        auto it = std::find_if(t.settings.begin(), t.settings.end(),
                               [&](const Setting& h) { return h.name == set.name; });
        if (it != t.settings.end() && it->value == set.value) continue;
        databases_.push_back(Act(obj, "set", SettingText(set), {DatabaseSetSql(s.name, set)}));
      }
      for (const Setting& h : t.settings) {
        bool wanted = std::any_of(s.settings.begin(), s.settings.end(),
                                  [&](const Setting& x) { return x.name == h.name; });
        if (!wanted) databases_.push_back(Act(obj, "reset", h.name, {DatabaseResetSql(s.name, h)}));
      }
      DatabaseAcl(s, t, obj);
      if (s.comment != t.comment) {
        databases_.push_back(Act(obj, "comment", s.comment ? "comment changed" : "comment removed",
                                 {CommentSql("DATABASE", s.name, s.comment)}));
      }
    }
  }

  void DatabaseAcl(const Database& s, const Database& t, const std::string& obj) {
    std::vector<AclItem> want;
    for (AclItem a : s.acl) {
      a.grantee = a.grantee.empty() ? "" : MapRole(a.grantee);
      want.push_back(std::move(a));
    }
    std::sort(want.begin(), want.end());
    for (const AclItem& a : t.acl) {
      if (std::binary_search(want.begin(), want.end(), a)) continue;
      databases_.push_back(Act(obj, "revoke", AclText(a), {RevokeDatabaseSql(s.name, a)}));
    }
    for (const AclItem& a : want) {
      if (std::binary_search(t.acl.begin(), t.acl.end(), a)) continue;
      databases_.push_back(Act(obj, "grant", AclText(a), {GrantDatabaseSql(s.name, a)}));
    }
  }

  void Drops() {
    for (const std::string& name : tgt_.synced_roles) {
      if (src_.FindRole(name)) continue;
      const Role* t = tgt_.FindRole(name);
      if (!t) {
        d_.forget_roles.push_back(name);
        continue;
      }
      if (!Managed(*t)) continue;
      auto dep = tgt_.dependents.find(name);
      if (dep != tgt_.dependents.end()) {
        d_.warnings.push_back(fmt::format(
            "role {} was dropped on the source, but on the target it holds {}: not dropped; "
            "in each of those databases run REASSIGN OWNED BY {} TO new_owner; DROP OWNED BY {}; "
            "then run globals --apply again",
            Q(name), dep->second, QuoteIdent(name), QuoteIdent(name)));
        continue;
      }
      d_.forget_roles.push_back(name);
      drops_.push_back(Act("role " + Q(name), "drop", "dropped on the source",
                           {"DROP ROLE " + QuoteIdent(name)}));
    }
  }

  const Globals& src_;
  const Globals& tgt_;
  const DiffOptions& opt_;
  std::string src_bootstrap_, tgt_bootstrap_;
  Drift d_;
  std::vector<Action> creates_, roles_, settings_, members_, databases_, drops_;
};

}  // namespace

Drift Diff(const Globals& source, const Globals& target, const DiffOptions& options) {
  return Differ(source, target, options).Run();
}

}  // namespace pgbaton::tools::globals

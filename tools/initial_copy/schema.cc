#include "tools/initial_copy/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "common/conninfo.h"
#include "common/sql_ident.h"
#include "tools/initial_copy/subprocess.h"

namespace pgbaton::tools::copy {
namespace {

// The first "ERROR:" line (and its neighbours) of psql or pg_dump output, secrets scrubbed.
std::string FirstError(const std::string& err) {
  size_t at = err.find("ERROR:");
  if (at == std::string::npos) at = err.find("error:");
  std::string s = at == std::string::npos ? err : err.substr(at);
  if (s.size() > 600) s = s.substr(0, 600) + "...";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return ScrubSecrets(s);
}

// A pg_dump pattern that matches exactly this schema and table: inside double quotes, pattern
// characters (* ? . and capitals) are literal, and `""` is a quote, as in SQL.
std::string ExactPattern(const std::string& schema, const std::string& table) {
  return QuoteQualified(schema, table);
}

// Reads one SQL identifier at `pos` as pg_dump writes it: "quoted" (`""` is a quote) or a plain
// run of characters up to a space, dot, semicolon or parenthesis. Moves `pos` past it.
std::string ReadIdent(const std::string& sql, size_t* pos) {
  std::string out;
  size_t i = *pos;
  if (i < sql.size() && sql[i] == '"') {
    for (++i; i < sql.size(); ++i) {
      if (sql[i] == '"') {
        if (i + 1 < sql.size() && sql[i + 1] == '"') {
          out += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      } else {
        out += sql[i];
      }
    }
  } else {
    while (i < sql.size() && sql.find_first_of(" \n.;(", i) != i) out += sql[i++];
  }
  *pos = i;
  return out;
}

// The relation an entry's SQL is on: "ALTER TABLE [ONLY] x" or "... ON [ONLY] x USING"; x is
// schema.name with either part quoted (pg_dump always schema-qualifies).
QualifiedName TableOf(const std::string& type, const std::string& sql) {
  auto name_after = [&](size_t pos) {
    while (pos < sql.size() && (sql[pos] == ' ' || sql[pos] == '\n')) ++pos;
    if (sql.compare(pos, 5, "ONLY ") == 0) pos += 5;
    QualifiedName n;
    n.schema = ReadIdent(sql, &pos);
    if (pos >= sql.size() || sql[pos] != '.') return QualifiedName{};
    ++pos;
    n.name = ReadIdent(sql, &pos);
    return n;
  };
  if (type == "INDEX") {
    size_t on = sql.find(" ON ");
    return on == std::string::npos ? QualifiedName{} : name_after(on + 4);
  }
  size_t alter = sql.find("ALTER TABLE ");
  return alter == std::string::npos ? QualifiedName{} : name_after(alter + 12);
}

// The child's password goes in its environment, never on its argv (which `ps` shows).
std::map<std::string, std::string> PasswordEnv(const ConninfoAndPassword& c) {
  if (!c.password) return {};
  return {{"PGPASSWORD", *c.password}};
}

}  // namespace

Result<int> PgDumpMajor(const std::string& path) {
  PGB_ASSIGN_OR_RETURN(ProcessOutput po, RunProcess({path, "--version"}, ""));
  // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  size_t close = po.out.find(") ");
  if (po.exit_code != 0 || close == std::string::npos) {
    return Status::Error(ErrorCode::kNotFound,
                         fmt::format("cannot tell the version of \"{}\": {}", path, po.out),
                         "pass a working pg_dump with --pg-dump");
  }
  return std::atoi(po.out.c_str() + close + 2);
}

Result<std::string> DumpSection(const CopyOptions& options, const std::string& snapshot,
                                const std::string& section,
                                const std::vector<TableInfo>& excluded) {
  // pgbaton's own schema (the DDL capture, a cutover sentinel) is never part of the copy.
  std::vector<std::string> argv = {options.pg_dump,           "--schema-only",
                                   "--section=" + section,    "--snapshot=" + snapshot,
                                   "--no-publications",       "--no-subscriptions",
                                   "--exclude-schema=pgbaton"};
  if (options.no_owner) argv.push_back("--no-owner");
  std::vector<std::string> seen;
  for (const auto& t : excluded) {
    for (std::string p :
         {ExactPattern(t.schema, t.name), ExactPattern(t.root_schema, t.root_name)}) {
      if (std::find(seen.begin(), seen.end(), p) != seen.end()) continue;
      seen.push_back(p);
      argv.push_back("--exclude-table=" + p);
    }
  }
  PGB_ASSIGN_OR_RETURN(ConninfoAndPassword source, SeparatePassword(options.source));
  argv.push_back("--dbname=" + source.conninfo);
  PGB_ASSIGN_OR_RETURN(ProcessOutput po, RunProcess(argv, "", PasswordEnv(source)));
  if (po.exit_code != 0) {
    std::string err = FirstError(po.err);
    if (err.find("snapshot") != std::string::npos) {
      return Status::Error(ErrorCode::kSnapshotLost,
                           fmt::format("pg_dump --section={} on source ({}): {}", section,
                                       DescribeConninfo(options.source), err),
                           "the session that exported the snapshot ended; run the same command "
                           "again to copy at a new snapshot");
    }
    if (err.find("version mismatch") != std::string::npos) {
      return Status::Error(
          ErrorCode::kVersion,
          fmt::format("pg_dump cannot dump source ({}): {}", DescribeConninfo(options.source), err),
          "install a pg_dump at least as new as the source and pass it with "
          "--pg-dump");
    }
    return Status::Error(ErrorCode::kServerError,
                         fmt::format("pg_dump --section={} on source ({}) failed: {}", section,
                                     DescribeConninfo(options.source), err));
  }
  return StripDdlCapture(po.out);
}

std::string StripDdlCapture(const std::string& sql) {
  // Entries are "--\n-- Name: N; Type: T; ...\n--\n" and their SQL, up to the next header.
  std::string out;
  size_t pos = 0;
  bool skipping = false;
  while (pos < sql.size()) {
    size_t eol = sql.find('\n', pos);
    size_t next = eol == std::string::npos ? sql.size() : eol + 1;
    std::string_view line(sql.data() + pos, next - pos);
    if (line.rfind("-- Name: ", 0) == 0) {
      skipping = line.find("; Type: EVENT TRIGGER;") != std::string_view::npos &&
                 line.rfind("-- Name: pgbaton_ddl", 0) == 0;
      // The "--" line before the header was already written: harmless.
    }
    if (!skipping) out.append(line);
    pos = next;
  }
  return out;
}

Status RestoreInOneTransaction(const CopyOptions& options, const std::string& sql) {
  std::vector<std::string> argv = {options.psql,           "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                   "--single-transaction", "-f", "-"};
  PGB_ASSIGN_OR_RETURN(ConninfoAndPassword target, SeparatePassword(options.target));
  argv.push_back("--dbname=" + target.conninfo);
  PGB_ASSIGN_OR_RETURN(ProcessOutput po, RunProcess(argv, sql, PasswordEnv(target)));
  if (po.exit_code != 0) {
    std::string err = FirstError(po.err);
    std::string hint =
        "the schema was not changed (one transaction); fix the cause and run the "
        "same command again";
    if (err.find("role") != std::string::npos && err.find("does not exist") != std::string::npos) {
      hint =
          "create the roles on the target first (pg_dumpall --roles-only | psql) or pass "
          "--no-owner; then run the same command again";
    } else if (err.find("already exists") != std::string::npos) {
      hint =
          "the target already holds part of this schema: copy into an empty database, or "
          "drop the objects that are in the way";
    }
    return Status::Error(ErrorCode::kServerError,
                         fmt::format("restoring the schema on target ({}) failed: {}",
                                     DescribeConninfo(options.target), err),
                         hint);
  }
  return Status::Ok();
}

PostData SplitPostData(const std::string& sql) {
  PostData out;
  std::istringstream in(sql);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  PostDataEntry* cur = nullptr;
  for (size_t i = 0; i < lines.size(); ++i) {
    // An entry header is "--" / "-- Name: ...; Type: T; Schema: ...; Owner: ..." / "--".
    if (lines[i] == "--" && i + 2 < lines.size() && lines[i + 2] == "--" &&
        lines[i + 1].rfind("-- Name: ", 0) == 0) {
      const std::string& h = lines[i + 1];
      PostDataEntry e;
      size_t type_at = h.find("; Type: ");
      e.name = h.substr(9, type_at == std::string::npos ? std::string::npos : type_at - 9);
      if (type_at != std::string::npos) {
        size_t end = h.find(';', type_at + 8);
        e.type =
            h.substr(type_at + 8, end == std::string::npos ? std::string::npos : end - type_at - 8);
      }
      out.entries.push_back(std::move(e));
      cur = &out.entries.back();
      i += 2;
      continue;
    }
    if (lines[i].rfind("--", 0) == 0) continue;
    // psql meta-commands (pg_dump 15.14+ writes \restrict and \unrestrict) are not SQL.
    if (lines[i].rfind("\\", 0) == 0) continue;
    if (cur == nullptr) {
      if (!lines[i].empty()) out.preamble += lines[i] + "\n";
    } else if (!lines[i].empty() || !cur->sql.empty()) {
      cur->sql += lines[i] + "\n";
    }
  }
  for (auto& e : out.entries) {
    while (!e.sql.empty() && (e.sql.back() == '\n' || e.sql.back() == ' ')) e.sql.pop_back();
    if (e.type == "INDEX" || e.type == "CONSTRAINT") {
      e.wave = 0;
    } else if (e.type == "INDEX ATTACH") {
      e.wave = 1;
    }
    e.table = TableOf(e.type, e.sql);
  }
  // Drop entries with nothing to run (e.g. the closing comment).
  std::erase_if(out.entries, [](const PostDataEntry& e) { return e.sql.empty(); });
  return out;
}

}  // namespace pgbaton::tools::copy

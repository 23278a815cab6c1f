#include "tools/verification/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "catalog/source_catalog.h"
#include "common/sql_ident.h"

namespace pgbaton::tools::verify {

namespace {

using Params = std::vector<std::optional<std::string>>;

struct Column {
  std::string name;
  std::string type;  // format_type, for casting key parameters
  bool collatable = false;
};

using catalog::UserTable;

// Output settings that make row text identical on every major: dates, times, floats, bytea and
// money print the same way whatever the server's or the role's defaults are.
constexpr const char* kSessionSettings =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'; "
    "SET statement_timeout = 0";

Status StartSnapshot(PgConn* conn) {
  PGB_RETURN_IF_ERROR(PrepareSession(conn));
  return conn->Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
      .WithContext(conn->label() + ": starting the snapshot");
}

constexpr const char* kColumns = R"sql(
SELECT attname, format_type(atttypid, atttypmod), attcollation <> 0
FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped
ORDER BY attnum)sql";

// The primary key, or else the replica identity index, in index column order.
constexpr const char* kKeyColumns = R"sql(
WITH idx AS (
  SELECT indexrelid, indkey FROM pg_index
  WHERE indrelid = $1::oid AND (indisprimary OR indisreplident)
  ORDER BY indisprimary DESC LIMIT 1)
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attcollation <> 0
FROM idx, unnest(idx.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = $1::oid AND a.attnum = k.attnum
ORDER BY k.ord)sql";

Result<std::vector<Column>> QueryColumns(PgConn* conn, const char* sql, const std::string& oid) {
  PGB_ASSIGN_OR_RETURN(PgResult r, conn->ExecParams(sql, {oid}));
  std::vector<Column> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(Column{r.GetString(i, 0), r.GetString(i, 1), r.GetBool(i, 2)});
  }
  return out;
}

// Builds the SQL for one table, identical on both sides (names resolved on the source).
class TableSql {
 public:
  TableSql(const UserTable& t, std::vector<Column> columns, std::vector<Column> key)
      : key_(std::move(key)) {
    from_ = std::string(t.partitioned ? "" : "ONLY ") + QuoteQualified(t.name);
    row_ = "ROW(";
    for (size_t i = 0; i < columns.size(); ++i) {
      row_ += (i ? ", " : "") + QuoteIdent(columns[i].name);
    }
    row_ += ")::text";
    // Keys compare in the "C" collation so that both sides (whose libc may differ) agree on
    // which rows fall in a range.
    for (size_t i = 0; i < key_.size(); ++i) {
      std::string col = QuoteIdent(key_[i].name);
      key_names_.push_back(key_[i].name);
      key_order_ += (i ? ", " : "") + col + (key_[i].collatable ? " COLLATE \"C\"" : "");
      key_text_ += (i ? ", " : "") + col + "::text";
    }
  }

  bool has_key() const { return !key_.empty(); }
  const std::vector<std::string>& key_names() const { return key_names_; }
  std::string Count() const { return "SELECT count(*) FROM " + from_; }

  // Row count and checksum: the sum of the first 64 bits of each row's md5, so the order in
  // which rows are read does not matter and duplicates count.
  std::string Checksum(const std::string& where) const {
    return fmt::format(
        "SELECT count(*), md5(coalesce(sum(('x' || substr(md5({}), 1, 16))::bit(64)::bigint), "
        "0)::text) FROM {}{}",
        row_, from_, where);
  }

  // Every row's key (as text) and md5, for pinning differences inside a range.
  std::string RowHashes(const std::string& where) const {
    return fmt::format("SELECT {}, md5({}) FROM {}{}", key_text_, row_, from_, where);
  }

  // First and last key of every chunk of `chunk` rows, with the row ordinal.
  std::string Boundaries() const {
    return fmt::format(
        "SELECT pgb_rn, {} FROM (SELECT row_number() OVER (ORDER BY {}) AS pgb_rn, "
        "count(*) OVER () AS pgb_n, * FROM {}) s "
        "WHERE (pgb_rn - 1) % $1::bigint = 0 OR pgb_rn % $1::bigint = 0 OR pgb_rn = pgb_n "
        "ORDER BY pgb_rn",
        key_text_, key_order_, from_);
  }

  // " WHERE key >= lower AND key < upper" with parameters starting at $`first_param`.
  std::string RangeWhere(bool lower, bool upper) const {
    std::vector<std::string> conds;
    int p = 1;
    auto tuple = [&]() {
      std::string s = "ROW(";
      for (size_t i = 0; i < key_.size(); ++i) {
        s += fmt::format("{}${}::{}{}", i ? ", " : "", p++, key_[i].type,
                         key_[i].collatable ? " COLLATE \"C\"" : "");
      }
      return s + ")";
    };
    if (lower) conds.push_back(fmt::format("ROW({}) >= {}", key_order_, tuple()));
    if (upper) conds.push_back(fmt::format("ROW({}) < {}", key_order_, tuple()));
    if (conds.empty()) return "";
    std::string out = " WHERE " + conds[0];
    if (conds.size() > 1) out += " AND " + conds[1];
    return out;
  }

 private:
  std::vector<Column> key_;
  std::vector<std::string> key_names_;
  std::string from_, row_, key_order_, key_text_;
};

std::string KeyDisplay(const std::vector<std::string>& names, const std::vector<std::string>& v) {
  if (names.size() == 1) return v[0];
  std::string out = "(";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + ")";
}

std::string KeyNames(const std::vector<std::string>& names) {
  if (names.size() == 1) return names[0];
  std::string out = "(";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + ")";
}

struct Chunk {
  int64_t first_row = 0, last_row = 0;
  std::vector<std::string> first_key, last_key;
};

Status CompareRange(PgConn* source, PgConn* target, const TableSql& sql, const std::string& where,
                    const Params& params, const VerifyOptions& options, RangeResult* out) {
  std::string q = sql.Checksum(where);
  PGB_ASSIGN_OR_RETURN(PgResult s, source->ExecParams(q, params));
  PGB_ASSIGN_OR_RETURN(PgResult t, target->ExecParams(q, params));
  out->source_rows = s.GetInt(0, 0);
  out->source_md5 = s.GetString(0, 1);
  out->target_rows = t.GetInt(0, 0);
  out->target_md5 = t.GetString(0, 1);
  if (out->match() || !sql.has_key()) return Status::Ok();

  // Pin the difference to keys: the source's rows of the range in a map, the target's against it.
  std::string hq = sql.RowHashes(where);
  PGB_ASSIGN_OR_RETURN(PgResult sh, source->ExecParams(hq, params));
  PGB_ASSIGN_OR_RETURN(PgResult th, target->ExecParams(hq, params));
  size_t nkey = sql.key_names().size();
  auto key_of = [&](const PgResult& r, int row) {
    std::string k;
    for (size_t c = 0; c < nkey; ++c) {
      k += fmt::format(
          "{}{}={}", c ? ", " : "", sql.key_names()[c],
          r.IsNull(row, static_cast<int>(c)) ? "NULL" : r.GetString(row, static_cast<int>(c)));
    }
    return k;
  };
  std::unordered_map<std::string, std::string> src;
  for (int i = 0; i < sh.rows(); ++i) src[key_of(sh, i)] = sh.GetString(i, static_cast<int>(nkey));
  std::vector<std::string> diffs;
  for (int i = 0; i < th.rows(); ++i) {
    std::string k = key_of(th, i);
    auto it = src.find(k);
    if (it == src.end()) {
      diffs.push_back(k + ": extra on target");
    } else {
      if (it->second != th.GetString(i, static_cast<int>(nkey))) diffs.push_back(k + ": changed");
      src.erase(it);
    }
  }
  for (const auto& [k, unused] : src) diffs.push_back(k + ": missing on target");
  std::sort(diffs.begin(), diffs.end());
  size_t total = diffs.size();
  if (total > static_cast<size_t>(options.max_keys_reported)) {
    diffs.resize(static_cast<size_t>(options.max_keys_reported));
    diffs.push_back(fmt::format("... and {} more", total - diffs.size()));
  }
  out->differing_keys = std::move(diffs);
  return Status::Ok();
}

Result<TableResult> VerifyTable(PgConn* source, PgConn* target, const UserTable& st,
                                const UserTable& tt, const VerifyOptions& options) {
  TableResult result;
  result.name = st.display;
  PGB_ASSIGN_OR_RETURN(std::vector<Column> columns,
                       QueryColumns(source, kColumns, std::to_string(st.oid)));
  PGB_ASSIGN_OR_RETURN(std::vector<Column> target_columns,
                       QueryColumns(target, kColumns, std::to_string(tt.oid)));
  for (const auto& c : columns) {
    bool found = std::any_of(target_columns.begin(), target_columns.end(),
                             [&](const Column& t) { return t.name == c.name; });
    if (!found) {
      return Status::Error(ErrorCode::kNotFound,
                           fmt::format("table {}: column \"{}\" exists on source but not on target",
                                       result.name, c.name),
                           "the target schema does not match the source; re-run the schema step "
                           "of pgbaton copy or add the column");
    }
  }
  PGB_ASSIGN_OR_RETURN(std::vector<Column> key,
                       QueryColumns(source, kKeyColumns, std::to_string(st.oid)));
  TableSql sql(st, columns, key);
  for (const auto& k : key) result.key.push_back(k.name);

  PGB_ASSIGN_OR_RETURN(PgResult count, source->Exec(sql.Count()));
  int64_t n = count.GetInt(0, 0);

  std::vector<Chunk> chunks;
  if (sql.has_key() && n > options.chunk_rows) {
    PGB_ASSIGN_OR_RETURN(
        PgResult b, source->ExecParams(sql.Boundaries(), {std::to_string(options.chunk_rows)}));
    for (int i = 0; i < b.rows(); ++i) {
      int64_t rn = b.GetInt(i, 0);
      std::vector<std::string> k;
      for (size_t c = 0; c < key.size(); ++c) k.push_back(b.GetString(i, static_cast<int>(c) + 1));
      if ((rn - 1) % options.chunk_rows == 0) {
        chunks.push_back(Chunk{rn, rn, k, k});
      } else {
        chunks.back().last_row = rn;
        chunks.back().last_key = k;
      }
    }
  }

  if (chunks.empty()) {
    RangeResult r;
    r.first_row = n > 0 ? 1 : 0;
    r.last_row = n;
    PGB_RETURN_IF_ERROR(CompareRange(source, target, sql, "", {}, options, &r));
    result.source_rows = r.source_rows;
    result.target_rows = r.target_rows;
    result.ranges = 1;
    if (!r.match()) result.differing.push_back(std::move(r));
    return result;
  }

  for (size_t j = 0; j < chunks.size(); ++j) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) {
      return Status::Error(ErrorCode::kInterrupted,
                           fmt::format("verify interrupted at table {}", result.name));
    }
    // The first range has no lower bound and the last no upper one, so target rows outside the
    // source's key span are counted too.
    bool lower = j > 0, upper = j + 1 < chunks.size();
    Params params;
    if (lower) params.insert(params.end(), chunks[j].first_key.begin(), chunks[j].first_key.end());
    if (upper) {
      params.insert(params.end(), chunks[j + 1].first_key.begin(), chunks[j + 1].first_key.end());
    }
    RangeResult r;
    r.first_row = chunks[j].first_row;
    r.last_row = chunks[j].last_row;
    r.first_key = KeyDisplay(result.key, chunks[j].first_key);
    r.last_key = KeyDisplay(result.key, chunks[j].last_key);
    PGB_RETURN_IF_ERROR(
        CompareRange(source, target, sql, sql.RangeWhere(lower, upper), params, options, &r));
    result.source_rows += r.source_rows;
    result.target_rows += r.target_rows;
    ++result.ranges;
    if (!r.match()) result.differing.push_back(std::move(r));
  }
  return result;
}

}  // namespace

Status PrepareSession(PgConn* conn) {
  return conn->Run(kSessionSettings).WithContext(conn->label() + ": setting up the session");
}

int VerifyReport::differing_tables() const {
  return static_cast<int>(
      std::count_if(tables.begin(), tables.end(), [](const TableResult& t) { return !t.match(); }));
}

Result<VerifyReport> VerifyTables(PgConn* source, PgConn* target, const VerifyOptions& options) {
  if (options.chunk_rows < 1) {
    return Status::Error(ErrorCode::kUsage, "--chunk-rows must be at least 1");
  }
  if (!options.snapshots_open) {
    PGB_RETURN_IF_ERROR(StartSnapshot(source));
    PGB_RETURN_IF_ERROR(StartSnapshot(target));
  }

  std::vector<UserTable> tables;
  if (options.tables.empty()) {
    // Every leaf table, unlogged ones too (their rows are compared like any other), but not an
    // extension's (CREATE EXTENSION fills those on each side).
    PGB_ASSIGN_OR_RETURN(tables, catalog::ListUserTables(*source));
    std::erase_if(tables, [](const UserTable& t) { return t.partitioned || t.extension_member; });
  } else {
    for (const auto& text : options.tables) {
      PGB_ASSIGN_OR_RETURN(QualifiedName name, ParseQualifiedName(text, "public", "--tables"));
      PGB_ASSIGN_OR_RETURN(std::optional<UserTable> t, catalog::FindTable(*source, name));
      if (!t) {
        return Status::Error(
            ErrorCode::kNotFound,
            fmt::format("table {}: does not exist on source", QuoteQualified(name)),
            "check the name given to --tables (schema.table)");
      }
      tables.push_back(*t);
    }
  }

  // Every table must exist on the target before anything is compared.
  std::vector<UserTable> target_tables;
  std::vector<std::string> missing;
  for (const auto& t : tables) {
    PGB_ASSIGN_OR_RETURN(std::optional<UserTable> tt, catalog::FindTable(*target, t.name));
    if (!tt) {
      missing.push_back(t.display);
    } else {
      target_tables.push_back(*tt);
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Status::Error(
        ErrorCode::kNotFound,
        missing.size() == 1
            ? fmt::format("table {} exists on source but not on target", list)
            : fmt::format("{} tables exist on source but not on target: {}", missing.size(), list),
        "create it on the target (pgbaton copy copies the schema), or leave it out with --tables");
  }

  VerifyReport report;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) {
      return Status::Error(
          ErrorCode::kInterrupted,
          fmt::format("verify interrupted after {} of {} tables", i, tables.size()));
    }
    PGB_ASSIGN_OR_RETURN(TableResult r,
                         VerifyTable(source, target, tables[i], target_tables[i], options));
    report.tables.push_back(std::move(r));
  }
  (void)source->Run("COMMIT");
  (void)target->Run("COMMIT");
  return report;
}

std::string FormatReport(const VerifyReport& report) {
  std::string out;
  std::vector<std::string> differ;
  for (const auto& t : report.tables) {
    if (t.match()) {
      out += fmt::format("ok      {}: {} rows{}\n", t.name, t.source_rows,
                         t.ranges > 1 ? fmt::format(" in {} key ranges", t.ranges) : "");
      continue;
    }
    differ.push_back(t.name);
    for (const auto& r : t.differing) {
      std::string where;
      if (!r.first_key.empty()) {
        where = fmt::format(" rows {}..{} ({} {} to {})", r.first_row, r.last_row, KeyNames(t.key),
                            r.first_key, r.last_key);
      }
      out += fmt::format("table {}{} differ{}: source {} rows md5 {}, target {} rows md5 {}\n",
                         t.name, where.empty() ? "" : ":" + where, where.empty() ? "s" : "",
                         r.source_rows, r.source_md5, r.target_rows, r.target_md5);
      for (const auto& k : r.differing_keys) out += fmt::format("    {}\n", k);
      if (t.key.empty()) out += "    (no primary key or replica identity: rows not pinned)\n";
    }
  }
  std::string list;
  for (const auto& d : differ) list += (list.empty() ? "" : ", ") + d;
  if (!report.at.empty()) out += fmt::format("compared at {}\n", report.at);
  out += fmt::format("verify: {} tables compared, {} match, {} differ{}\n", report.tables.size(),
                     report.tables.size() - differ.size(), differ.size(),
                     differ.empty() ? "" : ": " + list);
  return out;
}

nlohmann::json ReportJson(const VerifyReport& report) {
  nlohmann::json j;
  j["match"] = report.differing_tables() == 0;
  if (report.source_lsn.IsValid()) {
    j["source_lsn"] = report.source_lsn.ToString();
    j["target_applied_lsn"] = report.target_applied_lsn.ToString();
    j["applier_paused_ms"] = report.applier_paused_ms;
  }
  j["tables"] = nlohmann::json::array();
  for (const auto& t : report.tables) {
    nlohmann::json jt;
    jt["table"] = t.name;
    jt["key"] = t.key;
    jt["match"] = t.match();
    jt["source_rows"] = t.source_rows;
    jt["target_rows"] = t.target_rows;
    jt["ranges"] = t.ranges;
    jt["differing_ranges"] = nlohmann::json::array();
    for (const auto& r : t.differing) {
      jt["differing_ranges"].push_back({{"first_row", r.first_row},
                                        {"last_row", r.last_row},
                                        {"first_key", r.first_key},
                                        {"last_key", r.last_key},
                                        {"source_rows", r.source_rows},
                                        {"target_rows", r.target_rows},
                                        {"source_md5", r.source_md5},
                                        {"target_md5", r.target_md5},
                                        {"differing_keys", r.differing_keys}});
    }
    j["tables"].push_back(std::move(jt));
  }
  return j;
}

std::string FormatReportJson(const VerifyReport& report) {
  return ReportJson(report).dump(2) + "\n";
}

std::string FormatReportJsonLine(const VerifyReport& report) {
  nlohmann::json j = ReportJson(report);
  j["phase"] = "verify";
  return j.dump() + "\n";
}

}  // namespace pgbaton::tools::verify

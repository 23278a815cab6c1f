#include "applier/sql_builder.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgbaton::applier {

namespace {

using queue::ChangeKind;
using queue::ValueKind;

void AppendList(std::string* out, const std::vector<int>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) *out += ',';
    *out += std::to_string(v[i]);
  }
}

Status CheckTuple(const TargetRelation& rel, const queue::Tuple& t, const char* which) {
  if (t.size() != rel.columns.size()) {
    return Status::Error(
        ErrorCode::kProtocol,
        fmt::format("{} tuple of relation \"{}\" has {} columns, its descriptor "
                    "(version {}) has {}",
                    which, rel.qualified_name, t.size(), rel.source.version, rel.columns.size()));
  }
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].kind == ValueKind::kBinary) {
      return Status::Error(ErrorCode::kUnsupportedType,
                           fmt::format("column \"{}\" of relation \"{}\" arrived in binary format",
                                       rel.columns[i].name, rel.qualified_name),
                           "stream values in text format (the default)");
    }
  }
  return Status::Ok();
}

const std::string* ParamOf(const queue::Value& v) {
  return v.kind == ValueKind::kText ? &v.data : nullptr;
}

// WHERE clause for match columns starting at parameter `first_param` (1-based).
void AppendMatch(const TargetRelation& rel, const StatementShape& s, int first_param,
                 std::string* out) {
  bool first = true;
  int p = first_param;
  for (int c : s.match_cols) {
    *out += first ? "" : " AND ";
    first = false;
    *out += fmt::format("{} = ${}::{}", rel.columns[c].quoted_name, p++, rel.columns[c].cast);
  }
  for (int c : s.null_cols) {
    *out += first ? "" : " AND ";
    first = false;
    *out += fmt::format("{} IS NULL", rel.columns[c].quoted_name);
  }
  if (first) *out += "true";
}

void AppendWhere(const TargetRelation& rel, const StatementShape& s, int first_param,
                 std::string* out) {
  *out += " WHERE ";
  if (!s.by_ctid) {
    AppendMatch(rel, s, first_param, out);
    return;
  }
  // No key: pick exactly one row that has all the old values. A partitioned table's ctids
  // repeat across partitions, so there the row is named by (tableoid, ctid).
  const char* locator = rel.partitioned ? "(tableoid, ctid)" : "ctid";
  const char* columns = rel.partitioned ? "tableoid, ctid" : "ctid";
  *out += fmt::format("{} = (SELECT {} FROM {} WHERE ", locator, columns, rel.quoted_name);
  AppendMatch(rel, s, first_param, out);
  *out += " LIMIT 1)";
}

}  // namespace

std::string StatementShape::Key() const {
  std::string k(1, static_cast<char>(kind));
  k += '|';
  AppendList(&k, write_cols);
  k += '|';
  AppendList(&k, match_cols);
  k += '|';
  AppendList(&k, null_cols);
  k += by_ctid ? "/c" : "/k";
  if (skip_conflicts) k += 's';
  return k;
}

std::vector<int> InsertColumns(const TargetRelation& rel, const queue::Tuple& tuple) {
  std::vector<int> cols;
  for (size_t i = 0; i < rel.columns.size() && i < tuple.size(); ++i) {
    if (rel.columns[i].skip || tuple[i].kind == ValueKind::kUnchangedToast) continue;
    cols.push_back(static_cast<int>(i));
  }
  return cols;
}

Result<PlannedChange> PlanChange(const TargetRelation& rel, const queue::Change& change,
                                 const PlanFlags& flags) {
  PlannedChange pc;
  StatementShape& s = pc.shape;
  if (change.kind == ChangeKind::kInsert) {
    if (!change.new_tuple) {
      return Status::Error(ErrorCode::kProtocol,
                           fmt::format("insert into \"{}\" has no new tuple", rel.qualified_name));
    }
    PGB_RETURN_IF_ERROR(CheckTuple(rel, *change.new_tuple, "new"));
    s.kind = StatementShape::Kind::kInsert;
    s.write_cols = InsertColumns(rel, *change.new_tuple);
    s.skip_conflicts = flags.skip_conflicts;
    for (int c : s.write_cols) pc.params.push_back(ParamOf((*change.new_tuple)[c]));
    return pc;
  }
  if (change.kind != ChangeKind::kUpdate && change.kind != ChangeKind::kDelete) {
    return Status::Error(ErrorCode::kInternal, "PlanChange called for a non-row change");
  }
  bool update = change.kind == ChangeKind::kUpdate;
  if (rel.source.identity == queue::ReplicaIdentity::kNothing ||
      (!rel.HasKey() && rel.source.identity != queue::ReplicaIdentity::kFull)) {
    return Status::Error(ErrorCode::kNoReplicaIdentity,
                         fmt::format("{} on relation \"{}\" which has no replica identity",
                                     update ? "update" : "delete", rel.qualified_name),
                         "give the table a primary key or REPLICA IDENTITY FULL on the source");
  }
  if (update) {
    if (!change.new_tuple) {
      return Status::Error(ErrorCode::kProtocol,
                           fmt::format("update of \"{}\" has no new tuple", rel.qualified_name));
    }
    PGB_RETURN_IF_ERROR(CheckTuple(rel, *change.new_tuple, "new"));
  }
  const queue::Tuple* old = change.old_tuple ? &*change.old_tuple : nullptr;
  if (old != nullptr) PGB_RETURN_IF_ERROR(CheckTuple(rel, *old, "old"));
  if (!update && old == nullptr) {
    return Status::Error(ErrorCode::kProtocol,
                         fmt::format("delete from \"{}\" has no old tuple", rel.qualified_name));
  }
  // The tuple the row is found by: the old key / old row when sent, else the new row (an update
  // that did not change the key).
  const queue::Tuple& match = old != nullptr ? *old : *change.new_tuple;
  bool full_old = old != nullptr && !change.old_is_key_only;

  s.kind = update ? StatementShape::Kind::kUpdate : StatementShape::Kind::kDelete;
  if (update) {
    const queue::Tuple& nt = *change.new_tuple;
    for (size_t i = 0; i < nt.size(); ++i) {
      if (rel.columns[i].skip || nt[i].kind == ValueKind::kUnchangedToast) continue;
      if (old == nullptr && rel.columns[i].is_key && rel.HasKey()) continue;  // key unchanged
      if (full_old && (*old)[i].kind != ValueKind::kUnchangedToast && (*old)[i] == nt[i]) {
        continue;  // identity FULL: the value did not change
      }
      s.write_cols.push_back(static_cast<int>(i));
    }
    if (s.write_cols.empty()) {
      // Nothing changed: still run a statement, so that a missing row is noticed. Set the first
      // sent column to its own value.
      for (size_t i = 0; i < nt.size(); ++i) {
        if (!rel.columns[i].skip && nt[i].kind != ValueKind::kUnchangedToast) {
          s.write_cols.push_back(static_cast<int>(i));
          break;
        }
      }
    }
    for (int c : s.write_cols) pc.params.push_back(ParamOf(nt[c]));
  }
  if (rel.HasKey()) {
    for (int c : rel.key_columns) {
      if (match[c].kind == ValueKind::kNull) {
        s.null_cols.push_back(c);  // a key of a USING INDEX identity is never null; be safe
      } else {
        s.match_cols.push_back(c);
        pc.params.push_back(ParamOf(match[c]));
      }
    }
  } else {
    // Identity FULL without a key: all old values, NULL-safe (IS NULL for nulls so that `=`
    // stays indexable), skipping values the server did not send and types without equality.
    s.by_ctid = true;
    for (size_t i = 0; i < match.size(); ++i) {
      if (match[i].kind == ValueKind::kUnchangedToast || !rel.columns[i].comparable) continue;
      if (match[i].kind == ValueKind::kNull) {
        s.null_cols.push_back(static_cast<int>(i));
      } else {
        s.match_cols.push_back(static_cast<int>(i));
        pc.params.push_back(ParamOf(match[i]));
      }
    }
  }
  pc.expect_row = true;
  return pc;
}

std::string BuildSql(const TargetRelation& rel, const StatementShape& s) {
  std::string sql;
  switch (s.kind) {
    case StatementShape::Kind::kInsert: {
      sql = fmt::format("INSERT INTO {} (", rel.quoted_name);
      for (size_t i = 0; i < s.write_cols.size(); ++i) {
        sql += (i ? ", " : "") + rel.columns[s.write_cols[i]].quoted_name;
      }
      sql += ") VALUES (";
      for (size_t i = 0; i < s.write_cols.size(); ++i) {
        sql += fmt::format("{}${}::{}", i ? ", " : "", i + 1, rel.columns[s.write_cols[i]].cast);
      }
      sql += ")";
      if (s.write_cols.empty()) sql = fmt::format("INSERT INTO {} DEFAULT VALUES", rel.quoted_name);
      if (s.skip_conflicts) sql += " ON CONFLICT DO NOTHING";
      break;
    }
    case StatementShape::Kind::kUpdate: {
      sql = fmt::format("UPDATE {} SET ", rel.quoted_name);
      for (size_t i = 0; i < s.write_cols.size(); ++i) {
        const auto& c = rel.columns[s.write_cols[i]];
        sql += fmt::format("{}{} = ${}::{}", i ? ", " : "", c.quoted_name, i + 1, c.cast);
      }
      AppendWhere(rel, s, static_cast<int>(s.write_cols.size()) + 1, &sql);
      break;
    }
    case StatementShape::Kind::kDelete:
      sql = fmt::format("DELETE FROM {}", rel.quoted_name);
      AppendWhere(rel, s, 1, &sql);
      break;
  }
  return sql;
}

std::string BuildTruncateSql(const std::vector<const TargetRelation*>& rels, uint8_t flags) {
  std::string sql = "TRUNCATE ";
  for (size_t i = 0; i < rels.size(); ++i) sql += (i ? ", " : "") + rels[i]->quoted_name;
  if (flags & queue::kTruncateRestartIdentity) sql += " RESTART IDENTITY";
  if (flags & queue::kTruncateCascade) sql += " CASCADE";
  return sql;
}

std::string BuildCopySql(const TargetRelation& rel, const std::vector<int>& cols) {
  std::string sql = fmt::format("COPY {} (", rel.quoted_name);
  for (size_t i = 0; i < cols.size(); ++i)
    sql += (i ? ", " : "") + rel.columns[cols[i]].quoted_name;
  sql += ") FROM STDIN";
  return sql;
}

void AppendCopyRow(const queue::Tuple& tuple, const std::vector<int>& cols, std::string* out) {
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) *out += '\t';
    const queue::Value& v = tuple[cols[i]];
    if (v.kind != ValueKind::kText) {
      *out += "\\N";
      continue;
    }
    for (char c : v.data) {
      switch (c) {
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        default:
          *out += c;
      }
    }
  }
  *out += '\n';
}

std::vector<int> UpdateColumns(const TargetRelation& rel, const queue::Tuple& tuple) {
  std::vector<int> cols;
  for (size_t i = 0; i < rel.columns.size() && i < tuple.size(); ++i) {
    const TargetColumn& c = rel.columns[i];
    if (c.skip || c.is_key || tuple[i].kind == ValueKind::kUnchangedToast) continue;
    cols.push_back(static_cast<int>(i));
  }
  return cols;
}

bool CanBatch(const TargetRelation& rel) {
  for (const TargetColumn& c : rel.columns) {
    if (!c.batchable) return false;  // no array type, or not ','-separated (box)
  }
  return true;
}

std::string BuildBatchUpdateSql(const TargetRelation& rel, const std::vector<int>& write_cols) {
  std::string set, arrays, names;
  int p = 1;
  auto add = [&](int col) {
    const TargetColumn& c = rel.columns[col];
    arrays += fmt::format("{}${}::{}[]", p > 1 ? ", " : "", p, c.cast);
    names += fmt::format("{}{}", p > 1 ? ", " : "", c.quoted_name);
    ++p;
  };
  for (size_t i = 0; i < write_cols.size(); ++i) {
    const std::string& n = rel.columns[write_cols[i]].quoted_name;
    set += fmt::format("{}{} = v.{}", i ? ", " : "", n, n);
    add(write_cols[i]);
  }
  std::string where;
  for (size_t i = 0; i < rel.key_columns.size(); ++i) {
    const std::string& n = rel.columns[rel.key_columns[i]].quoted_name;
    where += fmt::format("{}t.{} = v.{}", i ? " AND " : "", n, n);
    add(rel.key_columns[i]);
  }
  return fmt::format("UPDATE {} AS t SET {} FROM unnest({}) AS v({}) WHERE {}", rel.quoted_name,
                     set, arrays, names, where);
}

std::string BuildBatchInsertSql(const TargetRelation& rel, const std::vector<int>& cols) {
  std::string names, arrays;
  for (size_t i = 0; i < cols.size(); ++i) {
    const TargetColumn& c = rel.columns[cols[i]];
    names += fmt::format("{}{}", i ? ", " : "", c.quoted_name);
    arrays += fmt::format("{}${}::{}[]", i ? ", " : "", i + 1, c.cast);
  }
  return fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({})", rel.quoted_name, names,
                     arrays);
}

std::string BuildMissingKeysSql(const TargetRelation& rel) {
  std::string arrays, names, where;
  for (size_t i = 0; i < rel.key_columns.size(); ++i) {
    const TargetColumn& c = rel.columns[rel.key_columns[i]];
    arrays += fmt::format("{}${}::{}[]", i ? ", " : "", i + 1, c.cast);
    names += fmt::format("{}{}", i ? ", " : "", c.quoted_name);
    where += fmt::format("{}t.{} = v.{}", i ? " AND " : "", c.quoted_name, c.quoted_name);
  }
  return fmt::format(
      "SELECT {} FROM unnest({}) AS v({}) WHERE NOT EXISTS (SELECT FROM {} AS t WHERE {}) "
      "LIMIT 1",
      names, arrays, names, rel.quoted_name, where);
}

void AppendArrayElement(const queue::Value& v, bool first, std::string* out) {
  if (!first) *out += ',';
  if (v.kind != ValueKind::kText) {
    *out += "NULL";
    return;
  }
  *out += '"';
  for (char c : v.data) {
    if (c == '"' || c == '\\') *out += '\\';
    *out += c;
  }
  *out += '"';
}

std::vector<std::string> ColumnArrays(const std::vector<int>& cols,
                                      const std::vector<const queue::Tuple*>& tuples) {
  std::vector<std::string> arrays(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    std::string& a = arrays[i];
    a.reserve(tuples.size() * 8);
    a += '{';
    for (size_t r = 0; r < tuples.size(); ++r)
      AppendArrayElement((*tuples[r])[cols[i]], r == 0, &a);
    a += '}';
  }
  return arrays;
}

std::string DescribeKey(const TargetRelation& rel, const queue::Change& change) {
  const queue::Tuple* t = change.old_tuple   ? &*change.old_tuple
                          : change.new_tuple ? &*change.new_tuple
                                             : nullptr;
  if (t == nullptr) return "()";
  std::vector<int> cols = rel.key_columns;
  if (cols.empty()) {
    for (size_t i = 0; i < t->size() && i < rel.columns.size(); ++i) cols.push_back(int(i));
  }
  std::string names, values;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (cols[i] >= static_cast<int>(t->size())) continue;
    names += (i ? ", " : "") + rel.columns[cols[i]].name;
    const queue::Value& v = (*t)[cols[i]];
    std::string text = v.kind == ValueKind::kNull             ? "null"
                       : v.kind == ValueKind::kUnchangedToast ? "(unchanged toast)"
                                                              : v.data.substr(0, 64);
    values += (i ? ", " : "") + text;
  }
  return fmt::format("({})=({})", names, values);
}

}  // namespace pgbaton::applier

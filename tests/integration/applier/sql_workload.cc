#include "tests/integration/applier/sql_workload.h"

#include <fmt/format.h>

namespace pgbaton::testing {

namespace {

using queue::ValueKind;

constexpr size_t kToastThreshold = 2000;  // values this long are stored out of line

}  // namespace

std::string WorkloadSchema() {
  return R"sql(
create table t_default (id int primary key, u int unique, v text, big text);
alter table t_default alter column big set storage external;
create table t_index (a int not null, b int not null, v text);
create unique index t_index_ab on t_index (a, b);
alter table t_index replica identity using index t_index_ab;
create table t_full (x int, y text, z jsonb);
alter table t_full replica identity full;
create table t_part (id int, region int, v text, primary key (id, region)) partition by list (region);
create table t_part_1 partition of t_part for values in (1);
create table t_part_2 partition of t_part for values in (2);
create table t_gen (id int primary key, a int, b int generated always as (a * 2) stored);
)sql";
}

std::vector<std::string> WorkloadTables() {
  return {"t_default", "t_index", "t_full", "t_part", "t_gen"};
}

Result<std::vector<std::vector<std::optional<std::string>>>> SqlWorkload::Rows(
    const std::string& sql) {
  PGB_ASSIGN_OR_RETURN(PgResult r, source_->Exec(sql));
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int i = 0; i < r.rows(); ++i) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < r.columns(); ++c) row.push_back(r.GetOptional(i, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

queue::Tuple SqlWorkload::ToTuple(const std::vector<std::optional<std::string>>& row) {
  queue::Tuple t;
  for (const auto& v : row) {
    t.push_back(v ? queue::Value{ValueKind::kText, *v} : queue::Value{ValueKind::kNull, ""});
  }
  return t;
}

std::string SqlWorkload::BigValue() {
  std::string s;
  while (s.size() < 3000) s += fmt::format("{:08x}", static_cast<uint32_t>(rng_()));
  return s;
}

Result<queue::RelationDescriptor> SqlWorkload::Describe(const std::string& table) {
  for (const auto& d : described_) {
    if (d.name == table) return d;
  }
  PGB_ASSIGN_OR_RETURN(
      PgResult r,
      source_->ExecParams(
          "select c.oid, c.relreplident, a.attname, tn.nspname, "
          "coalesce(a.attnum = any(i.indkey), c.relreplident = 'f'), t.typname "
          "from pg_class c join pg_attribute a on a.attrelid = c.oid "
          "join pg_type t on t.oid = a.atttypid join pg_namespace tn on tn.oid = t.typnamespace "
          "left join pg_index i on i.indrelid = c.oid and ((c.relreplident = 'd' and "
          "i.indisprimary) or (c.relreplident = 'i' and i.indisreplident)) "
          "where c.relname = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum",
          {table}));
  queue::RelationDescriptor d;
  d.id = RelationId{static_cast<uint32_t>(r.GetInt(0, 0))};
  d.version = 1;
  d.schema = "public";
  d.name = table;
  d.identity = static_cast<queue::ReplicaIdentity>(r.Get(0, 1)[0]);
  for (int i = 0; i < r.rows(); ++i) {
    queue::Column c;
    c.name = r.GetString(i, 2);
    c.type = QualifiedName{r.GetString(i, 3), r.GetString(i, 5)};
    c.is_key = r.GetBool(i, 4);
    d.columns.push_back(c);
  }
  described_.push_back(d);
  pending_relations_.push_back(d);
  return d;
}

Status SqlWorkload::RunOp(const std::string& kind, bool heavy, std::vector<queue::Change>* out) {
  const std::string table = kind.substr(0, kind.find(':'));
  const std::string op = kind.substr(kind.find(':') + 1);
  PGB_ASSIGN_OR_RETURN(queue::RelationDescriptor d, Describe(table));
  int id_space = heavy ? 20 : 400;
  auto change = [&](queue::ChangeKind k) {
    queue::Change c;
    c.kind = k;
    c.relation = d.id;
    c.relation_version = d.version;
    return c;
  };
  auto pick = [&](const std::string& cols) -> Result<std::vector<std::optional<std::string>>> {
    PGB_ASSIGN_OR_RETURN(
        auto rows, Rows(fmt::format("select {} from {} order by random() limit 1", cols, table)));
    if (rows.empty()) return std::vector<std::optional<std::string>>{};
    return rows[0];
  };
  std::string sql;
  if (op == "ins") {
    int id = Rand(id_space) + 1;
    if (table == "t_default") {
      sql = fmt::format(
          "insert into t_default values ({}, {}, 'v{}', {}) on conflict do nothing "
          "returning *",
          id, Rand(id_space) + 1, Rand(1000), Rand(3) == 0 ? "'" + BigValue() + "'" : "null");
    } else if (table == "t_index") {
      sql = fmt::format(
          "insert into t_index values ({}, {}, 'v{}') on conflict do nothing "
          "returning *",
          Rand(id_space / 4 + 1), Rand(8), Rand(1000));
    } else if (table == "t_full") {
      sql = fmt::format("insert into t_full values ({}, {}, '{{\"k\": {}}}') returning *", Rand(10),
                        Rand(4) == 0 ? "null" : fmt::format("'y{}'", Rand(5)), Rand(3));
    } else if (table == "t_part") {
      sql = fmt::format(
          "insert into t_part values ({}, {}, 'v{}') on conflict do nothing "
          "returning *",
          id, Rand(2) + 1, Rand(1000));
    } else {
      sql = fmt::format(
          "insert into t_gen (id, a) values ({}, {}) on conflict do nothing "
          "returning *",
          id, Rand(1000));
    }
    PGB_ASSIGN_OR_RETURN(auto rows, Rows(sql));
    for (auto& row : rows) {
      queue::Change c = change(queue::ChangeKind::kInsert);
      c.new_tuple = ToTuple(row);
      out->push_back(std::move(c));
    }
    return Status::Ok();
  }
  if (table == "t_full") {
    // No key: pick a row by ctid, remember its old values, change or delete exactly it.
    PGB_ASSIGN_OR_RETURN(auto row, pick("ctid, *"));
    if (row.empty()) return Status::Ok();
    std::string ctid = *row[0];
    row.erase(row.begin());
    sql = op == "del" ? fmt::format("delete from t_full where ctid = '{}' returning *", ctid)
                      : fmt::format("update t_full set y = {} where ctid = '{}' returning *",
                                    Rand(3) == 0 ? "null" : fmt::format("'y{}'", Rand(5)), ctid);
    PGB_ASSIGN_OR_RETURN(auto rows, Rows(sql));
    queue::Change c = change(op == "del" ? queue::ChangeKind::kDelete : queue::ChangeKind::kUpdate);
    c.old_tuple = ToTuple(row);
    c.old_is_key_only = false;
    if (op != "del") c.new_tuple = ToTuple(rows.at(0));
    out->push_back(std::move(c));
    return Status::Ok();
  }
  // Keyed tables: the key columns of the descriptor.
  std::vector<std::string> key_cols;
  for (const auto& col : d.columns) {
    if (col.is_key) key_cols.push_back(col.name);
  }
  std::string keys = fmt::format("{}", fmt::join(key_cols, ", "));
  PGB_ASSIGN_OR_RETURN(auto key, pick(keys));
  if (key.empty()) return Status::Ok();
  std::string where;
  for (size_t i = 0; i < key_cols.size(); ++i) {
    where += fmt::format("{}{} = '{}'", i ? " and " : "", key_cols[i], *key[i]);
  }
  auto key_tuple = [&] {
    queue::Tuple t(d.columns.size(), queue::Value{ValueKind::kNull, ""});
    size_t k = 0;
    for (size_t i = 0; i < d.columns.size(); ++i) {
      if (d.columns[i].is_key) t[i] = queue::Value{ValueKind::kText, *key[k++]};
    }
    return t;
  };
  if (op == "del") {
    PGB_ASSIGN_OR_RETURN(auto rows,
                         Rows(fmt::format("delete from {} where {} returning *", table, where)));
    queue::Change c = change(queue::ChangeKind::kDelete);
    c.old_tuple = key_tuple();
    c.old_is_key_only = true;
    out->push_back(std::move(c));
    return Status::Ok();
  }
  std::string set;
  bool key_change = false;
  bool touches_big = false;
  if (op == "key") {
    key_change = true;
    if (table == "t_default") set = fmt::format("id = {}", 100000 + ++new_keys_);
    if (table == "t_index") set = fmt::format("b = {}", 1000 + ++new_keys_);
    if (table == "t_part") set = "region = 3 - region";  // moves the row to the other partition
    if (table == "t_gen") set = fmt::format("id = {}", 100000 + ++new_keys_);
  } else if (op == "move" && table == "t_default") {
    // A unique value moves from one row to another within the transaction.
    PGB_ASSIGN_OR_RETURN(auto other, pick("id, u"));
    if (other.empty() || *other[0] == *key[0]) return Status::Ok();
    PGB_ASSIGN_OR_RETURN(
        auto rows1,
        Rows(fmt::format("update t_default set u = null where id = {} returning *", *other[0])));
    queue::Change c1 = change(queue::ChangeKind::kUpdate);
    c1.new_tuple = ToTuple(rows1.at(0));
    if ((*c1.new_tuple)[3].kind == ValueKind::kText &&
        (*c1.new_tuple)[3].data.size() > kToastThreshold) {
      (*c1.new_tuple)[3] = queue::Value{ValueKind::kUnchangedToast, ""};
    }
    out->push_back(std::move(c1));
    set = other[1] ? fmt::format("u = {}", *other[1]) : "u = null";
  } else if (table == "t_default") {
    touches_big = Rand(4) == 0;
    set = fmt::format("v = 'w{}'", Rand(1000));
    if (touches_big) set += ", big = '" + BigValue() + "'";
  } else if (table == "t_gen") {
    set = fmt::format("a = {}", Rand(1000));
  } else {
    set = fmt::format("v = 'w{}'", Rand(1000));
  }
  PGB_ASSIGN_OR_RETURN(
      auto rows, Rows(fmt::format("update {} set {} where {} returning *", table, set, where)));
  if (rows.empty()) return Status::Ok();
  queue::Change c = change(queue::ChangeKind::kUpdate);
  c.new_tuple = ToTuple(rows[0]);
  if (key_change) {
    c.old_tuple = key_tuple();
    c.old_is_key_only = true;
  }
  if (table == "t_default" && !touches_big && (*c.new_tuple)[3].kind == ValueKind::kText &&
      (*c.new_tuple)[3].data.size() > kToastThreshold) {
    (*c.new_tuple)[3] = queue::Value{ValueKind::kUnchangedToast, ""};  // as pgoutput sends it
  }
  out->push_back(std::move(c));
  return Status::Ok();
}

Result<queue::RecordBatch> SqlWorkload::Run(int count, bool heavy) {
  static const std::vector<std::string> kOps = {
      "t_default:ins",  "t_default:ins", "t_default:upd", "t_default:upd", "t_default:key",
      "t_default:move", "t_default:del", "t_index:ins",   "t_index:ins",   "t_index:upd",
      "t_index:key",    "t_index:del",   "t_full:ins",    "t_full:ins",    "t_full:upd",
      "t_full:del",     "t_part:ins",    "t_part:ins",    "t_part:upd",    "t_part:key",
      "t_part:del",     "t_gen:ins",     "t_gen:upd",     "t_gen:del"};
  queue::RecordBatch batch;
  for (int i = 0; i < count; ++i) {
    PGB_RETURN_IF_ERROR(source_->Run("begin"));
    std::vector<queue::Change> changes;
    int n = 1 + Rand(6);
    for (int k = 0; k < n; ++k) {
      // A statement that fails on the source (a duplicate key from a random choice) is undone
      // with its savepoint and sends nothing, as on a real source.
      PGB_RETURN_IF_ERROR(source_->Run("savepoint op"));
      size_t before = changes.size();
      Status s = RunOp(kOps[Rand(static_cast<int>(kOps.size()))], heavy, &changes);
      if (!s.ok()) {
        if (s.code() != ErrorCode::kApplyConflict) return s;
        changes.resize(before);
        PGB_RETURN_IF_ERROR(source_->Run("rollback to savepoint op"));
      }
    }
    PGB_RETURN_IF_ERROR(source_->Run("commit"));
    if (changes.empty()) continue;
    queue::ChangeChunk chunk;
    chunk.xid = Xid{xid_};
    chunk.subxid = Xid{xid_};
    chunk.changes = std::move(changes);
    queue::CommitRecord commit;
    commit.commit_lsn = Lsn(next_lsn_);
    commit.end_lsn = Lsn(next_lsn_ + 0x30);
    commit.xid = Xid{xid_};
    commit.commit_time = PgTimestamp::Now();
    commit.change_count = chunk.changes.size();
    commit.chunk_count = 1;
    next_lsn_ += 0x100;
    ++xid_;
    batch.chunks.push_back(std::move(chunk));
    batch.commits.push_back(commit);
  }
  batch.relations = std::move(pending_relations_);
  pending_relations_.clear();
  return batch;
}

Result<queue::RecordBatch> SqlWorkload::Truncate(const std::string& table, uint8_t flags) {
  PGB_ASSIGN_OR_RETURN(queue::RelationDescriptor d, Describe(table));
  PGB_RETURN_IF_ERROR(source_->Run(
      fmt::format("truncate {}{}", table,
                  (flags & queue::kTruncateRestartIdentity) ? " restart identity" : "")));
  queue::RecordBatch batch;
  queue::ChangeChunk chunk;
  chunk.xid = chunk.subxid = Xid{xid_};
  queue::Change c;
  c.kind = queue::ChangeKind::kTruncate;
  c.truncated = {d.id};
  c.truncated_versions = {d.version};
  c.truncate_flags = flags;
  chunk.changes.push_back(c);
  queue::CommitRecord commit;
  commit.commit_lsn = Lsn(next_lsn_);
  commit.end_lsn = Lsn(next_lsn_ + 0x30);
  commit.xid = Xid{xid_++};
  commit.commit_time = PgTimestamp::Now();
  commit.change_count = 1;
  commit.chunk_count = 1;
  next_lsn_ += 0x100;
  batch.chunks.push_back(std::move(chunk));
  batch.commits.push_back(commit);
  batch.relations = std::move(pending_relations_);
  pending_relations_.clear();
  return batch;
}

}  // namespace pgbaton::testing

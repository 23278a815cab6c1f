// Relation descriptors and changes for the applier's unit tests.
#pragma once

#include <string>
#include <vector>

#include "applier/target_relation.h"
#include "queue/record.h"

namespace pgbaton::applier::testing {

inline queue::Value T(std::string s) { return queue::Value{queue::ValueKind::kText, std::move(s)}; }
inline queue::Value N() { return queue::Value{queue::ValueKind::kNull, ""}; }
inline queue::Value U() { return queue::Value{queue::ValueKind::kUnchangedToast, ""}; }

// `type` is "schema.name" split at its first dot, for brevity in tests ("pg_catalog.int4").
inline queue::Column Col(std::string name, std::string_view type, bool key = false) {
  queue::Column c;
  c.name = std::move(name);
  size_t dot = type.find('.');
  c.type = QualifiedName{std::string(type.substr(0, dot)), std::string(type.substr(dot + 1))};
  c.is_key = key;
  return c;
}
// A column whose type is given by its two parts, which may hold dots, quotes or spaces.
inline queue::Column Col(std::string name, QualifiedName type, bool key = false) {
  queue::Column c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.is_key = key;
  return c;
}

inline queue::RelationDescriptor Rel(std::string schema, std::string name,
                                     queue::ReplicaIdentity identity,
                                     std::vector<queue::Column> cols, uint32_t id = 16384) {
  queue::RelationDescriptor d;
  d.id = RelationId{id};
  d.version = 1;
  d.schema = std::move(schema);
  d.name = std::move(name);
  d.identity = identity;
  d.columns = std::move(cols);
  return d;
}

inline queue::Change Insert(queue::Tuple t) {
  queue::Change c;
  c.kind = queue::ChangeKind::kInsert;
  c.new_tuple = std::move(t);
  return c;
}
inline queue::Change Update(std::optional<queue::Tuple> old_t, queue::Tuple new_t,
                            bool key_only = true) {
  queue::Change c;
  c.kind = queue::ChangeKind::kUpdate;
  c.old_tuple = std::move(old_t);
  c.old_is_key_only = key_only && c.old_tuple.has_value();
  c.new_tuple = std::move(new_t);
  return c;
}
inline queue::Change Delete(queue::Tuple old_t, bool key_only = true) {
  queue::Change c;
  c.kind = queue::ChangeKind::kDelete;
  c.old_tuple = std::move(old_t);
  c.old_is_key_only = key_only;
  return c;
}

// public.accounts (id int4 pk, email text, balance numeric, note text): a unique index on email.
inline TargetRelation Accounts() {
  TargetRelation r = DescribeWithoutCatalog(
      Rel("public", "accounts", queue::ReplicaIdentity::kDefault,
          {Col("id", "pg_catalog.int4", true), Col("email", "pg_catalog.text"),
           Col("balance", "pg_catalog.numeric"), Col("note", "pg_catalog.text")}));
  r.unique_indexes.push_back({1});
  return r;
}

// public.plain (id int8 pk, v text): no other unique index.
inline TargetRelation Plain() {
  return DescribeWithoutCatalog(
      Rel("public", "plain", queue::ReplicaIdentity::kDefault,
          {Col("id", "pg_catalog.int8", true), Col("v", "pg_catalog.text")}));
}

// public.events (a int4, b text, c jsonb): REPLICA IDENTITY FULL, no key.
inline TargetRelation Events(bool partitioned = false) {
  return DescribeWithoutCatalog(
      Rel("public", "events", queue::ReplicaIdentity::kFull,
          {Col("a", "pg_catalog.int4", true), Col("b", "pg_catalog.text", true),
           Col("c", "pg_catalog.jsonb", true)}),
      partitioned);
}

}  // namespace pgbaton::applier::testing

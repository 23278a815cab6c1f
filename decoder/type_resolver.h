// Type names for the record model: the source's type OIDs resolved to their schema and name,
// kept apart ({"pg_catalog", "int4"}, {"Shop Data", "address"}). pgoutput sends a Type message only
// for types that are not built in; built-in names come from the source's catalogue, read once over
// a normal connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/pg.h"
#include "common/sql_ident.h"
#include "common/status.h"

namespace pgbaton::decoder {

class TypeResolver {
 public:
  virtual ~TypeResolver() = default;
  // The schema and name of `oid`. Errors: kNotFound naming the OID, kConnection.
  virtual Result<QualifiedName> Resolve(uint32_t oid) = 0;
};

// Reads pg_type over a normal (non-replication) connection: every type with an OID below
// FirstNormalObjectId (16384) on the first call, then single OIDs as asked. Results are cached
// for the life of the object. Not thread-safe.
class PgTypeResolver : public TypeResolver {
 public:
  explicit PgTypeResolver(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  Result<QualifiedName> Resolve(uint32_t oid) override;

 private:
  Status Load(std::string_view where, const std::vector<std::optional<std::string>>& params);
  std::string conninfo_;
  PgConn conn_;
  bool builtins_loaded_ = false;
  std::unordered_map<uint32_t, QualifiedName> names_;
};

// A fixed map, for tests and tools that know their types.
class StaticTypeResolver : public TypeResolver {
 public:
  explicit StaticTypeResolver(std::unordered_map<uint32_t, QualifiedName> names)
      : names_(std::move(names)) {}
  Result<QualifiedName> Resolve(uint32_t oid) override;

 private:
  std::unordered_map<uint32_t, QualifiedName> names_;
};

}  // namespace pgbaton::decoder

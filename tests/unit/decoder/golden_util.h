// Helpers shared by the decoder's unit tests: loading the golden captures and running them
// through the parser and the assembler into a fake queue.
#pragma once

#include <string>
#include <vector>

#include "decoder/assembler.h"
#include "decoder/type_resolver.h"
#include "tests/support/capture_file.h"
#include "tests/unit/decoder/fake_work_queue.h"

namespace pgbaton::decoder::testing {

inline std::string CapturePath(int major, const std::string& name) {
  return std::string(PGBATON_TEST_DATA_DIR) + "/pgoutput/" + std::to_string(major) + "/" + name;
}

// The built-in types the golden workload uses (OIDs are the same on every major).
inline StaticTypeResolver GoldenTypes() {
  return StaticTypeResolver({{16, {"pg_catalog", "bool"}},
                             {17, {"pg_catalog", "bytea"}},
                             {20, {"pg_catalog", "int8"}},
                             {23, {"pg_catalog", "int4"}},
                             {25, {"pg_catalog", "text"}},
                             {701, {"pg_catalog", "float8"}},
                             {869, {"pg_catalog", "inet"}},
                             {1007, {"pg_catalog", "_int4"}},
                             {1009, {"pg_catalog", "_text"}},
                             {1082, {"pg_catalog", "date"}},
                             {1114, {"pg_catalog", "timestamp"}},
                             {1184, {"pg_catalog", "timestamptz"}},
                             {1186, {"pg_catalog", "interval"}},
                             {1700, {"pg_catalog", "numeric"}},
                             {2950, {"pg_catalog", "uuid"}},
                             {3802, {"pg_catalog", "jsonb"}}});
}

// Parses and assembles a whole capture, appending after every `every` messages (and at the
// end). Empty payloads (PostgreSQL 13) are skipped as the stream loop does.
inline Status AssembleCapture(const std::vector<CapturedMessage>& msgs, FakeWorkQueue* q,
                              TypeResolver* types, size_t chunk_bytes = 1 << 20, size_t every = 1) {
  PgOutputParser parser;
  Assembler a(types, {.chunk_bytes = chunk_bytes, .skip_through = Lsn()});
  size_t n = 0;
  for (const auto& m : msgs) {
    if (m.payload.empty()) continue;
    PGB_ASSIGN_OR_RETURN(auto parsed, parser.Parse(m.payload));
    PGB_RETURN_IF_ERROR(a.Add(std::move(parsed), m.wal_start));
    if (++n % every == 0 && !a.batch().empty()) PGB_RETURN_IF_ERROR(q->Append(a.TakeBatch()));
  }
  if (!a.batch().empty()) PGB_RETURN_IF_ERROR(q->Append(a.TakeBatch()));
  return Status::Ok();
}

}  // namespace pgbaton::decoder::testing

// pgoutput_dump FILE: prints each message of a capture file on one line (for people writing
// golden tests).
#include <fmt/format.h>

#include <cstdio>

#include "decoder/pgoutput_parser.h"
#include "tests/support/capture_file.h"

using namespace pgbaton;
using namespace pgbaton::decoder;

namespace {
std::string Tuple(const queue::Tuple& t) {
  std::string s = "(";
  for (const auto& v : t) {
    if (s.size() > 1) s += ", ";
    switch (v.kind) {
      case queue::ValueKind::kNull:
        s += "null";
        break;
      case queue::ValueKind::kUnchangedToast:
        s += "unchanged";
        break;
      default:
        s += v.data.size() > 40 ? fmt::format("<{} bytes>", v.data.size()) : "'" + v.data + "'";
    }
  }
  return s + ")";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto msgs = ReadCaptureFile(argv[1]);
  if (!msgs.ok()) {
    std::fprintf(stderr, "%s\n", msgs.status().ToString().c_str());
    return 1;
  }
  PgOutputParser p;
  int i = 0;
  for (const auto& m : *msgs) {
    if (m.payload.empty()) {
      std::printf("%d %s (empty)\n", i++, m.wal_start.ToString().c_str());
      continue;
    }
    auto r = p.Parse(m.payload);
    if (!r.ok()) {
      std::printf("%d %s ERROR %s\n", i++, m.wal_start.ToString().c_str(),
                  r.status().message().c_str());
      continue;
    }
    std::string extra;
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, RelationMsg>) {
            extra = fmt::format("{} {}.{} ident={} cols=", x.id.value, x.schema, x.name,
                                char(x.identity));
            for (auto& c : x.columns)
              extra += fmt::format("{}:{}:{}:{} ", c.name, c.type_oid, c.type_modifier, c.flags);
          } else if constexpr (std::is_same_v<T, TypeMsg>) {
            extra = fmt::format("{} {}.{}", x.oid, x.schema, x.name);
          } else if constexpr (std::is_same_v<T, InsertMsg>) {
            extra = fmt::format("xid={} rel={} {}", x.xid ? x.xid->value : 0, x.relation.value,
                                Tuple(x.new_tuple));
          } else if constexpr (std::is_same_v<T, UpdateMsg>) {
            extra = fmt::format("xid={} rel={} old={} {} new={}", x.xid ? x.xid->value : 0,
                                x.relation.value, x.old_kind ? x.old_kind : '-',
                                x.old_tuple ? Tuple(*x.old_tuple) : "", Tuple(x.new_tuple));
          } else if constexpr (std::is_same_v<T, DeleteMsg>) {
            extra =
                fmt::format("rel={} old={} {}", x.relation.value, x.old_kind, Tuple(x.old_tuple));
          } else if constexpr (std::is_same_v<T, TruncateMsg>) {
            extra = fmt::format("flags={} n={}", x.flags, x.relations.size());
          } else if constexpr (std::is_same_v<T, LogicalMsg>) {
            extra = fmt::format("tx={} {} {}", x.transactional, x.prefix, x.content);
          } else if constexpr (std::is_same_v<T, BeginMsg>) {
            extra = fmt::format("xid={} final={}", x.xid.value, x.final_lsn.ToString());
          } else if constexpr (std::is_same_v<T, CommitMsg>) {
            extra = fmt::format("commit={} end={}", x.commit_lsn.ToString(), x.end_lsn.ToString());
          } else if constexpr (std::is_same_v<T, StreamStartMsg>) {
            extra = fmt::format("xid={} first={}", x.xid.value, x.first_segment);
          } else if constexpr (std::is_same_v<T, StreamAbortMsg>) {
            extra = fmt::format("xid={} sub={}", x.xid.value, x.subxid.value);
          } else if constexpr (std::is_same_v<T, StreamCommitMsg>) {
            extra = fmt::format("xid={}", x.xid.value);
          } else if constexpr (std::is_same_v<T, OriginMsg>) {
            extra = fmt::format("{} {}", x.name, x.origin_lsn.ToString());
          } else if constexpr (std::is_same_v<T, PrepareMsg> ||
                               std::is_same_v<T, BeginPrepareMsg> ||
                               std::is_same_v<T, CommitPreparedMsg> ||
                               std::is_same_v<T, RollbackPreparedMsg>) {
            extra = fmt::format("xid={} gid={}", x.xid.value, x.gid);
          }
        },
        *r);
    std::printf("%d %s %s %s\n", i++, m.wal_start.ToString().c_str(),
                std::string(MessageName(*r)).c_str(), extra.c_str());
  }
  return 0;
}

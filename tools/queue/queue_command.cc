#include "tools/queue/queue_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/sql_ident.h"
#include "queue/work_queue.h"
#include "tools/config/queue_flags.h"

namespace pgbaton::tools {
namespace {

using nlohmann::json;
using queue::Change;
using queue::ChangeKind;

std::string_view KindName(ChangeKind k) {
  switch (k) {
    case ChangeKind::kInsert:
      return "insert";
    case ChangeKind::kUpdate:
      return "update";
    case ChangeKind::kDelete:
      return "delete";
    case ChangeKind::kTruncate:
      return "truncate";
    case ChangeKind::kMessage:
      return "message";
  }
  return "unknown";
}

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

// Looks up relation names once per (id, version).
class RelationNames {
 public:
  explicit RelationNames(queue::WorkQueue* q) : q_(q) {}
  const queue::RelationDescriptor* Get(RelationId id, uint32_t version) {
    auto key = std::make_pair(id.value, version);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      auto r = q_->GetRelation(id, version);
      it = cache_.emplace(key, r.ok() ? std::optional(std::move(r).value()) : std::nullopt).first;
    }
    return it->second ? &*it->second : nullptr;
  }
  std::string Name(RelationId id, uint32_t version) {
    const auto* r = Get(id, version);
    return r ? r->schema + "." + r->name
             : fmt::format("unknown relation {} version {}", id.value, version);
  }

 private:
  queue::WorkQueue* q_;
  std::map<std::pair<uint32_t, uint32_t>, std::optional<queue::RelationDescriptor>> cache_;
};

json TupleJson(const queue::Tuple& t, const queue::RelationDescriptor* rel) {
  json cols = json::array();
  for (size_t i = 0; i < t.size(); ++i) {
    json c;
    c["name"] = rel && i < rel->columns.size() ? rel->columns[i].name : fmt::format("${}", i + 1);
    switch (t[i].kind) {
      case queue::ValueKind::kNull:
        c["kind"] = "null";
        break;
      case queue::ValueKind::kUnchangedToast:
        c["kind"] = "unchanged_toast";
        break;
      case queue::ValueKind::kText:
        c["kind"] = "text";
        c["value"] = t[i].data;
        break;
      case queue::ValueKind::kBinary:
        c["kind"] = "binary";
        c["value"] = Hex(t[i].data);
        break;
    }
    cols.push_back(std::move(c));
  }
  return cols;
}

json ChangeJson(const Change& c, RelationNames* names) {
  json j;
  j["kind"] = KindName(c.kind);
  switch (c.kind) {
    case ChangeKind::kInsert:
    case ChangeKind::kUpdate:
    case ChangeKind::kDelete: {
      const auto* rel = names->Get(c.relation, c.relation_version);
      j["relation"] = names->Name(c.relation, c.relation_version);
      j["relation_id"] = c.relation.value;
      j["relation_version"] = c.relation_version;
      if (c.old_tuple) {
        j["old"] = TupleJson(*c.old_tuple, rel);
        j["old_is_key_only"] = c.old_is_key_only;
      }
      if (c.new_tuple) j["new"] = TupleJson(*c.new_tuple, rel);
      break;
    }
    case ChangeKind::kTruncate: {
      json rels = json::array();
      for (size_t i = 0; i < c.truncated.size(); ++i) {
        uint32_t v = i < c.truncated_versions.size() ? c.truncated_versions[i] : 0;
        rels.push_back(names->Name(c.truncated[i], v));
      }
      j["relations"] = rels;
      j["cascade"] = (c.truncate_flags & queue::kTruncateCascade) != 0;
      j["restart_identity"] = (c.truncate_flags & queue::kTruncateRestartIdentity) != 0;
      break;
    }
    case ChangeKind::kMessage:
      j["prefix"] = c.message_prefix;
      j["content"] = c.message_content;  // invalid UTF-8 is replaced when printed
      break;
  }
  return j;
}

class QueueCommand : public Command {
 public:
  using Command::Command;

  Status Run() override {
    PGB_RETURN_IF_ERROR(queue_.Check("queue inspect"));
    Lsn from;
    if (!from_.empty()) {
      PGB_ASSIGN_OR_RETURN(from, Lsn::Parse(from_));
    }
    queue::QueueOptions o = queue_.ToOptions(global().name);
    o.read_only = true;
    o.create_if_missing = false;
    o.migration_name = "";  // inspect any queue
    std::string state_dir;
    if (queue_.kafka()) {
      char tmpl[] = "/tmp/pgbaton-inspect-XXXXXX";
      if (mkdtemp(tmpl)) state_dir = o.kafka_state_dir = tmpl;
    }
    Status s = Inspect(o, from);
    if (!state_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(state_dir, ec);
    }
    return s;
  }

 private:
  // Its one subcommand: `queue inspect`.
  void AddFlags(CLI::App* q) override {
    q->require_subcommand(1);
    inspect_ = q->add_subcommand("inspect", "print the transactions in the queue");
    // The Kafka reader's local state goes to a directory of its own, removed afterwards.
    queue_.Register(inspect_, {.kafka_state_dir = false, .topic_defaults_to_name = true});
    inspect_->add_option("--from", from_,
                         "print transactions committed after this LSN, e.g. 16/B374D848");
    inspect_->add_option("--limit", limit_, "stop after this many transactions (0: all)");
    inspect_->add_flag("--json", json_, "one JSON object per transaction per line");
    inspect_->add_flag("--relations", relations_, "print the relation descriptors first");
  }

  Status Inspect(const queue::QueueOptions& o, Lsn from) {
    PGB_ASSIGN_OR_RETURN(auto q, queue::WorkQueue::Open(o));
    RelationNames names(q.get());
    if (relations_) {
      PGB_RETURN_IF_ERROR(PrintRelations(q.get()));
    }
    PGB_ASSIGN_OR_RETURN(auto cursor, q->ReadFrom(from));
    uint64_t printed = 0;
    while (limit_ == 0 || printed < limit_) {
      PGB_ASSIGN_OR_RETURN(auto txn, cursor->Next(std::chrono::milliseconds(0)));
      if (!txn) break;
      PGB_RETURN_IF_ERROR(json_ ? PrintJson(txn.get(), &names) : PrintHuman(txn.get(), &names));
      ++printed;
    }
    if (!json_) {
      PGB_ASSIGN_OR_RETURN(Lsn first, q->FirstCommitLsn());
      PGB_ASSIGN_OR_RETURN(Lsn last, q->LastCommitLsn());
      std::printf("-- %llu transactions shown; the queue holds %s .. %s\n",
                  static_cast<unsigned long long>(printed),
                  first.IsValid() ? first.ToString().c_str() : "nothing",
                  last.IsValid() ? last.ToString().c_str() : "nothing");
    }
    std::fflush(stdout);
    return Status::Ok();
  }

  Status PrintRelations(queue::WorkQueue* q) {
    PGB_ASSIGN_OR_RETURN(auto rels, q->ListRelations());
    for (const auto& r : rels) {
      if (json_) {
        json j;
        j["relation"] = r.schema + "." + r.name;
        j["schema"] = r.schema;
        j["name"] = r.name;
        j["relation_id"] = r.id.value;
        j["version"] = r.version;
        j["replica_identity"] = std::string(1, static_cast<char>(r.identity));
        json cols = json::array();
        for (const auto& c : r.columns) {
          cols.push_back({{"name", c.name},
                          {"type", QuoteQualified(c.type)},
                          {"type_schema", c.type.schema},
                          {"type_name", c.type.name},
                          {"typmod", c.type_modifier},
                          {"key", c.is_key}});
        }
        j["columns"] = cols;
        std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      } else {
        std::string cols;
        for (const auto& c : r.columns) {
          cols += fmt::format("{}{} {}{}", cols.empty() ? "" : ", ", c.name, QuoteQualified(c.type),
                              c.is_key ? " key" : "");
        }
        std::printf("relation %s.%s (id %u version %u, identity %c): %s\n", r.schema.c_str(),
                    r.name.c_str(), r.id.value, r.version, static_cast<char>(r.identity),
                    cols.c_str());
      }
    }
    return Status::Ok();
  }

  // Streams one transaction as one line: the header, then its changes chunk by chunk.
  Status PrintJson(queue::TransactionReader* txn, RelationNames* names) {
    const queue::CommitRecord& c = txn->commit();
    json head;
    head["commit_lsn"] = c.commit_lsn.ToString();
    head["end_lsn"] = c.end_lsn.ToString();
    head["xid"] = c.xid.value;
    head["commit_time"] = c.commit_time.ToString();
    head["origin"] = c.origin;
    if (c.origin_lsn.IsValid()) head["origin_lsn"] = c.origin_lsn.ToString();
    head["change_count"] = c.change_count;
    head["chunk_count"] = c.chunk_count;
    std::string line = head.dump(-1, ' ', false, json::error_handler_t::replace);
    line.pop_back();
    line += ",\"changes\":[";
    bool first = true;
    queue::ChangeChunk chunk;
    while (true) {
      PGB_ASSIGN_OR_RETURN(bool more, txn->NextChunk(&chunk));
      if (!more) break;
      for (const Change& ch : chunk.changes) {
        if (!first) line += ',';
        first = false;
        line += ChangeJson(ch, names).dump(-1, ' ', false, json::error_handler_t::replace);
      }
      std::fwrite(line.data(), 1, line.size(), stdout);
      line.clear();
    }
    line += "]}\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    return Status::Ok();
  }

  Status PrintHuman(queue::TransactionReader* txn, RelationNames* names) {
    const queue::CommitRecord& c = txn->commit();
    std::map<std::string, std::map<std::string_view, uint64_t>> per_relation;
    uint64_t total = 0;
    queue::ChangeChunk chunk;
    while (true) {
      PGB_ASSIGN_OR_RETURN(bool more, txn->NextChunk(&chunk));
      if (!more) break;
      for (const Change& ch : chunk.changes) {
        ++total;
        std::string rel;
        if (ch.kind == ChangeKind::kMessage) {
          rel = "message " + ch.message_prefix;
        } else if (ch.kind == ChangeKind::kTruncate) {
          for (size_t i = 0; i < ch.truncated.size(); ++i) {
            uint32_t v = i < ch.truncated_versions.size() ? ch.truncated_versions[i] : 0;
            rel += (rel.empty() ? "" : ",") + names->Name(ch.truncated[i], v);
          }
        } else {
          rel = names->Name(ch.relation, ch.relation_version);
        }
        ++per_relation[rel][KindName(ch.kind)];
      }
    }
    std::string detail;
    for (const auto& [rel, kinds] : per_relation) {
      std::string k;
      for (const auto& [kind, n] : kinds)
        k += fmt::format("{}{} {}", k.empty() ? "" : " ", kind, n);
      detail += fmt::format("{}{} ({})", detail.empty() ? "" : ", ", rel, k);
    }
    std::printf("%s  end %s  xid %u  %s%s  %llu changes in %u chunks: %s\n",
                c.commit_lsn.ToString().c_str(), c.end_lsn.ToString().c_str(), c.xid.value,
                c.commit_time.ToString().c_str(),
                c.origin.empty() ? "" : ("  origin " + c.origin).c_str(),
                static_cast<unsigned long long>(total), c.chunk_count, detail.c_str());
    return Status::Ok();
  }

  CLI::App* inspect_ = nullptr;
  QueueFlags queue_;
  std::string from_;
  uint64_t limit_ = 0;
  bool json_ = false;
  bool relations_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeQueueCommand(GlobalOptions* g) {
  return std::make_unique<QueueCommand>(g, "queue", "look into the work queue");
}

}  // namespace pgbaton::tools

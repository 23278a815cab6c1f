#include "tools/common/cluster.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/conninfo.h"
#include "common/log.h"
#include "common/pg.h"
#include "tools/common/signals.h"

namespace pgbaton::tools {
namespace {

constexpr const char* kMaintenanceDatabase = "postgres";
constexpr const char* kClusterFile = "cluster.json";
constexpr size_t kMaxSlotName = 63;  // NAMEDATALEN - 1

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

const std::string* ExcludedBy(const ClusterFlags& flags, const std::string& database) {
  for (const std::string& pattern : flags.exclude) {
    if (fnmatch(pattern.c_str(), database.c_str(), 0) == 0) return &pattern;
  }
  return nullptr;
}

// What `flags` select among `existing` (the source's databases).
// With `maintenance`, "all" includes the maintenance database too (cleanup: whatever the
// migration holds).
Result<std::vector<std::string>> Select(const ClusterFlags& flags,
                                        const std::vector<std::string>& existing,
                                        bool maintenance) {
  std::vector<std::string> out;
  if (flags.databases == "all") {
    for (const std::string& d : existing) {
      if ((maintenance || d != kMaintenanceDatabase) && ExcludedBy(flags, d) == nullptr) {
        out.push_back(d);
      }
    }
  } else {
    for (const std::string& d : SplitList(flags.databases)) {
      if (std::find(existing.begin(), existing.end(), d) == existing.end()) {
        return Status::Error(ErrorCode::kNotFound,
                             fmt::format("database \"{}\" named by --databases does not exist on "
                                         "the source (or does not accept connections)",
                                         d),
                             "name the databases as `psql -l` lists them, or use --databases all");
      }
      if (const std::string* p = ExcludedBy(flags, d)) {
        return Status::Error(ErrorCode::kUsage,
                             fmt::format("database \"{}\" is named by --databases and excluded by "
                                         "--exclude-database \"{}\"",
                                         d, *p),
                             "drop it from one of the two");
      }
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    }
  }
  if (out.empty()) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("--databases \"{}\" selects no database on the source", flags.databases),
        "check --exclude-database; the templates and \"postgres\" are left out "
        "of --databases all unless named");
  }
  return out;
}

std::string Hex8(const std::string& s) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return fmt::format("{:08x}", h);
}

Result<nlohmann::json> ReadClusterFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("databases") ||
      !j["databases"].is_array()) {
    return Status::Error(ErrorCode::kQueueCorrupt,
                         fmt::format("\"{}\" is not a pgbaton cluster file", path.string()),
                         "restore it, or start the cluster migration again in a new queue "
                         "directory");
  }
  return j;
}

Status WriteClusterFile(const std::filesystem::path& path, const nlohmann::json& j) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) {
      return Status::Error(ErrorCode::kIo, fmt::format("cannot write \"{}\"", tmp.string()));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Error(ErrorCode::kIo,
                         fmt::format("cannot write \"{}\": {}", path.string(), ec.message()));
  }
  return Status::Ok();
}

}  // namespace

void ClusterFlags::Register(CLI::App* sub) {
  sub->add_option("--databases", databases,
                  "cluster mode: \"all\" (every database that accepts connections, less the "
                  "templates and \"postgres\" unless named) or a,b,c; the conninfo's dbname then "
                  "only names the database to connect to first");
  sub->add_option("--exclude-database", exclude,
                  "with --databases: leave out the databases matching this shell pattern "
                  "(repeatable)");
}

std::string ClusterMemberName(const std::string& name, const std::string& database) {
  std::string part;
  for (char c : database) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (ok) {
      part += c;
    } else if (c >= 'A' && c <= 'Z') {
      part += static_cast<char>(c - 'A' + 'a');
    } else {
      part += '_';
    }
  }
  const std::string plain = name + "_" + part;
  if (part == database && plain.size() <= kMaxSlotName) return plain;
  const std::string suffix = "_" + Hex8(database);
  std::string out = name + "_" + part;
  if (out.size() + suffix.size() > kMaxSlotName) out.resize(kMaxSlotName - suffix.size());
  return out + suffix;
}

Result<std::vector<ClusterMember>> ResolveCluster(const ClusterFlags& flags,
                                                  const MigrationStart& start,
                                                  const std::string& name, ClusterUse use) {
  if (!start.queue.kafka_brokers.empty()) {
    return Status::Error(ErrorCode::kUsage,
                         "--databases runs on the RocksDB queue (--queue-dir) only",
                         "give --queue-dir instead of the Kafka flags");
  }
  const std::filesystem::path dir = start.queue.dir;
  std::error_code ec;
  if (use != ClusterUse::kServers && std::filesystem::exists(dir / "CURRENT", ec)) {
    return Status::Error(
        ErrorCode::kUsage,
        fmt::format("queue \"{}\" holds a single-database migration, not a cluster's",
                    dir.string()),
        "give --databases only to the verbs of a cluster migration, or another --queue-dir");
  }
  nlohmann::json file = nlohmann::json::object();
  if (use != ClusterUse::kServers) {
    PGB_ASSIGN_OR_RETURN(file, ReadClusterFile(dir / kClusterFile));
  }
  std::set<std::string> known;
  if (file.contains("databases")) {
    for (const auto& d : file["databases"]) known.insert(d.value("database", ""));
  }
  std::vector<std::string> existing;
  if (use == ClusterUse::kCleanup) {
    existing.assign(known.begin(), known.end());
  } else {
    const std::string& connect = start.source.empty() ? start.target : start.source;
    PGB_ASSIGN_OR_RETURN(existing,
                         ListDatabases(connect, start.source.empty() ? "target" : "source",
                                       /*connectable_only=*/true));
  }
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> selected,
                       Select(flags, existing, use == ClusterUse::kCleanup));
  // A database of the migration that the source no longer has was dropped mid-migration: every
  // verb stops on it rather than carrying on with the others as if it had never been there.
  for (const std::string& d : known) {
    const bool selected_or_all =
        flags.databases == "all" ? ExcludedBy(flags, d) == nullptr
                                 : std::find(selected.begin(), selected.end(), d) != selected.end();
    if (selected_or_all && std::find(existing.begin(), existing.end(), d) == existing.end()) {
      return Status::Error(ErrorCode::kNotFound,
                           fmt::format("database \"{}\" of this cluster migration no longer "
                                       "exists on the {}",
                                       d, start.source.empty() ? "target" : "source"),
                           fmt::format("it was dropped mid-migration: leave it out with "
                                       "--exclude-database '{}' (and drop it on the target), or "
                                       "recreate it and copy it again",
                                       d));
    }
  }
  if (use == ClusterUse::kExisting) {
    for (const std::string& d : selected) {
      if (known.count(d) == 0) {
        return Status::Error(ErrorCode::kNotFound,
                             fmt::format("database \"{}\" is not part of the cluster migration "
                                         "in \"{}\"",
                                         d, dir.string()),
                             fmt::format("copy it first (copy --databases '{}'), or leave it "
                                         "out with --exclude-database",
                                         d));
      }
    }
  }

  std::vector<ClusterMember> out;
  for (const std::string& d : selected) {
    ClusterMember m;
    m.database = d;
    m.name = ClusterMemberName(name, d);
    m.start = start;
    m.start.database = d;
    if (!start.source.empty()) {
      PGB_ASSIGN_OR_RETURN(m.start.source, WithDatabase(start.source, d));
    }
    if (!start.target.empty()) {
      PGB_ASSIGN_OR_RETURN(m.start.target, WithDatabase(start.target, d));
    }
    if (use != ClusterUse::kServers) m.start.queue.dir = (dir / "databases" / m.name).string();
    m.start.queue.migration_name = m.name;
    const MigrationCheck fresh = QueueCheck(m.start.queue, start.check.verb);
    m.start.check.name = fresh.name;
    m.start.check.queue_label = fresh.queue_label;
    m.start.check.queue_dir = fresh.queue_dir;
    m.start.check.source_conninfo = m.start.source;
    m.start.check.target_conninfo = m.start.target;
    if (use == ClusterUse::kExisting && !std::filesystem::exists(m.start.queue.dir, ec)) {
      return Status::Error(ErrorCode::kNotFound,
                           fmt::format("database \"{}\" of the cluster migration in \"{}\" has "
                                       "no queue yet: its copy never started",
                                       d, dir.string()),
                           fmt::format("run the copy first (copy --databases '{}')", d));
    }
    out.push_back(std::move(m));
  }
  return out;
}

Status RecordClusterMembers(const std::string& queue_dir,
                            const std::vector<ClusterMember>& members) {
  const std::filesystem::path dir = queue_dir;
  PGB_ASSIGN_OR_RETURN(nlohmann::json file, ReadClusterFile(dir / kClusterFile));
  if (!file.contains("databases")) file["databases"] = nlohmann::json::array();
  std::set<std::string> known;
  for (const auto& d : file["databases"]) known.insert(d.value("database", ""));
  bool added = false;
  for (const ClusterMember& m : members) {
    if (known.count(m.database) != 0) continue;
    file["databases"].push_back({{"database", m.database}, {"name", m.name}});
    added = true;
  }
  if (!added) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir / "databases", ec);
  if (ec) {
    return Status::Error(ErrorCode::kIo, fmt::format("cannot create \"{}\": {}",
                                                     (dir / "databases").string(), ec.message()));
  }
  return WriteClusterFile(dir / kClusterFile, file);
}

Result<bool> ForgetClusterMembers(const std::string& queue_dir,
                                  const std::vector<ClusterMember>& members) {
  const std::filesystem::path dir = queue_dir;
  PGB_ASSIGN_OR_RETURN(nlohmann::json file, ReadClusterFile(dir / kClusterFile));
  nlohmann::json left = nlohmann::json::array();
  if (file.contains("databases")) {
    for (const auto& d : file["databases"]) {
      const std::string db = d.value("database", "");
      const bool cleaned = std::any_of(members.begin(), members.end(),
                                       [&](const ClusterMember& m) { return m.database == db; });
      if (!cleaned) left.push_back(d);
    }
  }
  std::error_code ec;
  if (!left.empty()) {
    file["databases"] = left;
    PGB_RETURN_IF_ERROR(WriteClusterFile(dir / kClusterFile, file));
    return false;
  }
  std::filesystem::remove(dir / kClusterFile, ec);
  std::filesystem::remove(dir / "databases", ec);  // only when empty
  std::filesystem::remove(dir, ec);                // only when empty
  if (std::filesystem::exists(dir, ec)) {
    return Status::Error(
        ErrorCode::kIo,
        fmt::format("\"{}\" holds files pgbaton did not write: not removing it", dir.string()),
        "look at what is left there and remove the directory by hand");
  }
  return true;
}

Result<std::vector<std::string>> ListDatabases(const std::string& conninfo,
                                               const std::string& label, bool connectable_only) {
  ConnectOptions co;
  co.label = label;
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(conninfo, co));
  PGB_ASSIGN_OR_RETURN(
      PgResult res,
      conn.Exec(std::string("SELECT datname FROM pg_catalog.pg_database") +
                (connectable_only ? " WHERE datallowconn AND NOT datistemplate" : "")));
  std::vector<std::string> out;
  for (int i = 0; i < res.rows(); ++i) out.push_back(res.GetString(i, 0));
  std::sort(out.begin(), out.end());  // byte order, whatever the server's collation
  return out;
}

Status CheckTargetDatabases(const std::vector<ClusterMember>& members, const std::string& target) {
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> there,
                       ListDatabases(target, "target", /*connectable_only=*/false));
  std::string missing;
  for (const ClusterMember& m : members) {
    if (!std::binary_search(there.begin(), there.end(), m.database))
      missing += (missing.empty() ? "\"" : ", \"") + m.database + "\"";
  }
  if (missing.empty()) return Status::Ok();
  return Status::Error(ErrorCode::kNotFound, fmt::format("the target has no database {}", missing),
                       "create them on the target first (CREATE DATABASE, with the source's "
                       "owner, encoding and locale)");
}

Status ForEachMember(const std::vector<ClusterMember>& members, bool parallel,
                     const std::function<Status(const ClusterMember&)>& body) {
  std::mutex mu;
  Status first;
  auto run = [&](const ClusterMember& m) {
    Status st = body(m);
    if (st.ok()) return;
    st = st.WithContext(fmt::format("database \"{}\"", m.database));
    std::lock_guard<std::mutex> lock(mu);
    if (first.ok()) {
      first = st;
      RequestStop();  // the other databases drain and stop: no partial silent success
    } else {
      LogError(st.message(), {{"database", m.database}});
    }
  };
  if (parallel) {
    // Each body ends as the single-database verb does on a signal; so does the whole.
    std::vector<std::thread> threads;
    for (const ClusterMember& m : members) threads.emplace_back(run, std::cref(m));
    for (std::thread& t : threads) t.join();
    return first;
  }
  for (size_t i = 0; i < members.size() && first.ok(); ++i) {
    if (StopRequested()) {
      return Status::Error(
          ErrorCode::kInterrupted,
          fmt::format("stopped by a signal before database \"{}\"", members[i].database),
          "run the same command again: each database resumes where it stopped");
    }
    run(members[i]);
  }
  return first;
}

}  // namespace pgbaton::tools

// The cutover report as JSON (docs/reference/commands.md, "pgbaton cutover") and as text.
#include <fmt/format.h>

#include "tools/cutover/bypass.h"
#include "tools/cutover/cutover.h"

namespace pgbaton::tools::cutover {

nlohmann::json CutoverReport::ToJson() const {
  nlohmann::json j;
  j["id"] = id;
  j["ok"] = ok;
  j["dry_run"] = dry_run;
  j["fence"] = fence;
  j["flip"] = flip;
  if (!plan.empty()) j["plan"] = plan;
  j["phases"] = nlohmann::json::array();
  for (const auto& p : phases)
    j["phases"].push_back({{"name", p.name}, {"ms", p.ms}, {"detail", p.detail}});
  j["write_pause_ms"] = write_pause_ms;
  j["fence_undone"] = fence_undone;
  j["lag_ms"] = lag_ms;
  j["lag_bytes"] = lag_bytes;
  j["sentinel_lsn"] = sentinel_lsn.IsValid() ? sentinel_lsn.ToString() : "";
  j["sequences"] = sequences;
  j["large_objects"] = large_objects;
  j["large_objects_synced"] = large_objects_synced;
  if (!reverse_command.empty()) {
    j["reverse"] = {
        {"command", reverse_command}, {"pid", reverse_pid}, {"stopped", reverse_stopped}};
  }
  if (!poolers.empty()) {
    j["poolers"] = nlohmann::json::array();
    for (const auto& m : poolers) {
      j["poolers"].push_back({{"name", m.name},
                              {"database", m.database},
                              {"flip", m.flip},
                              {"state", m.state},
                              {"points_at", m.points_at},
                              {"flip_attempts", m.flip_attempts},
                              {"error", m.error}});
    }
  }
  if (!bypassing.empty()) {
    j["bypassing"] = nlohmann::json::array();
    for (const auto& b : bypassing) {
      j["bypassing"].push_back({{"pid", b.pid},
                                {"user", b.user},
                                {"application", b.application},
                                {"client", b.client},
                                {"state", b.state},
                                {"terminated", b.terminated}});
    }
  }
  if (!stored_at.empty()) j["stored_at"] = stored_at;
  if (!error.ok()) {
    j["error"] = {{"code", std::string(ErrorCodeName(error.code()))},
                  {"exit_code", error.exit_code()},
                  {"message", error.message()},
                  {"hint", error.hint()}};
  }
  return j;
}

std::string CutoverReport::ToText() const {
  std::string out = fmt::format("cutover {}: {}\n", id,
                                ok ? (dry_run ? "dry run passed" : "done")
                                   : (fence_undone ? "failed, fence undone" : "failed"));
  for (const auto& p : phases) {
    if (p.name == "total") continue;
    out += fmt::format("  {:<13} {:>7} ms  {}\n", p.name, p.ms, p.detail);
  }
  for (size_t i = 0; i < plan.size(); ++i) out += fmt::format("  plan {}: {}\n", i + 1, plan[i]);
  if (write_pause_ms >= 0) {
    out += fmt::format("  write pause {} ms (fence to {})\n", write_pause_ms,
                       ok ? "flip done" : "fence undone");
  }
  for (const auto& m : poolers) {
    std::string where = m.points_at == "new"   ? "the new cluster"
                        : m.points_at == "old" ? "the old cluster"
                                               : "unknown";
    out +=
        fmt::format("  {}: {}, points at {}{}{}\n", m.name, m.state, where,
                    m.flip_attempts > 1 ? fmt::format(", {} flip attempts", m.flip_attempts) : "",
                    m.error.empty() ? "" : " (" + m.error + ")");
  }
  for (const auto& b : bypassing) {
    out += fmt::format("  bypassing the fence: {}{}\n", DescribeSession(b),
                       b.terminated ? ", terminated" : "");
  }
  if (!reverse_command.empty()) {
    out += fmt::format("  reverse stream{}: pid {}: {}\n", reverse_stopped ? " (stopped)" : "",
                       reverse_pid, reverse_command);
  }
  if (!stored_at.empty()) out += fmt::format("  timeline stored in {}\n", stored_at);
  return out;
}

}  // namespace pgbaton::tools::cutover

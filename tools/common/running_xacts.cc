#include "tools/common/running_xacts.h"

#include <pthread.h>

#include <optional>
#include <utility>

#include "common/log.h"
#include "common/pg.h"

namespace pgbaton::tools {

RunningXactsNudge::RunningXactsNudge(std::string source, std::chrono::milliseconds interval) {
  thread_ = std::thread([this, source = std::move(source), interval] {
    pthread_setname_np(pthread_self(), "pgb-xacts");
    std::optional<PgConn> conn;
    auto next = std::chrono::steady_clock::now();
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (std::chrono::steady_clock::now() < next) continue;
      next = std::chrono::steady_clock::now() + interval;
      if (!conn) {
        ConnectOptions co;
        co.label = "source";
        co.application_name = "pgbaton running-xacts";
        auto c = PgConn::Connect(source, co);
        if (!c.ok()) continue;  // the decoder reports an unreachable source
        conn.emplace(std::move(*c));
        if (conn->ServerMajor() < 16) {
          LogInfo(
              "the slot keeps the WAL of the last 15-30 s: a source before 16 logs its "
              "running-transactions records only every 15 s",
              {{"source_major", conn->ServerMajor()}});
          return;
        }
      }
      Status st = conn->Run("SELECT pg_catalog.pg_log_standby_snapshot()");
      if (st.ok()) continue;
      if (st.retryable()) {
        conn.reset();
        continue;
      }
      LogWarning(
          "cannot ask the source for running-transactions records, so the slot keeps the "
          "WAL of the last 15-30 s instead of about a second: " +
              st.message(),
          {{"fix",
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_log_standby_snapshot() TO "
            "the migrating role (or migrate as a superuser)"}});
      return;
    }
  });
}

RunningXactsNudge::~RunningXactsNudge() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace pgbaton::tools

#include "tools/common/stream_thread.h"

#include <pthread.h>

#include <memory>
#include <optional>
#include <utility>

#include "common/pg.h"
#include "decoder/type_resolver.h"
#include "tools/common/signals.h"

namespace pgbaton::tools {

StreamThread::StreamThread(std::string source, std::string name, queue::WorkQueue* queue,
                           int batch_delay_ms, const metrics::Catalog* metrics)
    : nudge_(source) {
  thread_ = std::thread(
      [this, source = std::move(source), name = std::move(name), queue, batch_delay_ms, metrics] {
        pthread_setname_np(pthread_self(), "pgb-decode");
        decoder::PgTypeResolver types(source);
        decoder::StreamOptions so;
        so.batch_max_delay = std::chrono::milliseconds(batch_delay_ms);
        so.metrics = metrics;
        status_ = decoder::RunStream(queue, &types, decoder::PgSourceFactory(source, name, name),
                                     so, &stop_, &stats_);
        ended_.store(true);
        if (!status_.ok()) RequestStop();
      });
}

void StreamThread::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::function<Lsn()> SlotReadPosition(std::string source, std::string slot,
                                      queue::WorkQueue* queue) {
  auto conn = std::make_shared<std::optional<PgConn>>();
  return [source = std::move(source), slot = std::move(slot), queue, conn]() -> Lsn {
    Lsn best;
    auto last = queue->LastEndLsn();
    if (last.ok()) best = *last;
    if (!*conn) {
      ConnectOptions co;
      co.label = "source";
      auto c = PgConn::Connect(source, co);
      if (!c.ok()) return best;
      conn->emplace(std::move(*c));
    }
    auto v = (*conn)->QueryValue(
        "select confirmed_flush_lsn from pg_catalog.pg_replication_slots where slot_name = $1",
        {slot});
    if (!v.ok()) {
      conn->reset();
      return best;
    }
    auto l = Lsn::Parse(*v);
    return l.ok() ? std::max(best, *l) : best;
  };
}

}  // namespace pgbaton::tools

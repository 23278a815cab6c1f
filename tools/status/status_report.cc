#include "tools/status/status_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "applier/progress.h"
#include "common/conninfo.h"
#include "common/error_code.h"
#include "common/log.h"
#include "tools/common/metrics_sampler.h"

namespace pgbaton::tools::status {
namespace {

using nlohmann::json;

json LsnJson(Lsn l) { return l.IsValid() ? json(l.ToString()) : json(nullptr); }

template <typename T>
json OptJson(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

double Round3(double v) { return std::round(v * 1000) / 1000; }

std::string LsnText(Lsn l) { return l.IsValid() ? l.ToString() : "-"; }

// Scans the queue's commit records (not their changes) for the counts and the rates of the last
// window: transactions whose commit time falls in it, and the WAL span they cover.
Status ScanQueue(queue::WorkQueue* queue, const StatusInputs& in, Lsn from, StatusReport* r) {
  PGB_ASSIGN_OR_RETURN(auto cursor, queue->ReadFrom(from));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(in.scan_budget_ms);
  const int64_t window_start =
      r->time.micros - static_cast<int64_t>(in.rate_window_seconds) * 1000000;
  uint64_t queued_n = 0, applied_n = 0;
  Lsn queued_from, queued_to, applied_from, applied_to;
  Lsn prev_end;  // end LSN of the transaction before the current one
  while (true) {
    if (r->queue_transactions >= in.max_scan || std::chrono::steady_clock::now() > deadline) {
      r->scan_truncated = true;
      break;
    }
    PGB_ASSIGN_OR_RETURN(auto txn, cursor->Next(std::chrono::milliseconds(0)));
    if (!txn) break;
    const queue::CommitRecord& c = txn->commit();
    ++r->queue_transactions;
    bool applied = r->target_known && c.commit_lsn <= r->applied_lsn;
    if (r->target_known && !applied) ++r->unapplied_transactions;
    if (c.commit_time.micros >= window_start) {
      Lsn from = prev_end.IsValid() ? prev_end : c.commit_lsn;
      ++queued_n;
      if (!queued_from.IsValid()) queued_from = from;
      queued_to = c.end_lsn;
      if (applied) {
        ++applied_n;
        if (!applied_from.IsValid()) applied_from = from;
        applied_to = c.end_lsn;
      }
    }
    prev_end = c.end_lsn;
  }
  if (!r->whole_scan) return Status::Ok();  // the rates come from samples
  double w = in.rate_window_seconds;
  r->queued_tps = queued_n / w;
  r->queued_bytes_per_second = static_cast<double>(queued_to.BytesSince(queued_from)) / w;
  r->applied_tps = applied_n / w;
  r->applied_bytes_per_second = static_cast<double>(applied_to.BytesSince(applied_from)) / w;
  return Status::Ok();
}

// Rates from the samples a running process keeps in the queue: the newest (if fresh) against the
// oldest of the same process within the window in which every position the newest knows was
// known too. A position of 0 means "not known at that time" (an empty queue, nothing applied
// yet, the source unreachable), never "at LSN 0": a rate measured from it would count the whole
// history of the cluster's WAL as if it had passed in the window. False when there are none to
// use.
bool RatesFromSamples(const std::string& text, const StatusInputs& in, StatusReport* r) {
  json samples = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!samples.is_array() || samples.size() < 2) return false;
  const json& newest = samples.back();
  double now = static_cast<double>(r->time.UnixMicros()) / 1e6;
  double t1 = newest.value("t", 0.0);
  if (now - t1 > 15) return false;  // the process stopped: nothing moves any more
  auto known = [](const json& s, const char* key) { return s.value(key, uint64_t{0}) != 0; };
  const bool queue_known = known(newest, "queued_lsn");
  const bool applied_known = known(newest, "applied_lsn");
  const bool source_known = known(newest, "source_lsn");
  const json* oldest = nullptr;
  for (const json& s : samples) {
    if (s.value("pid", -1) != newest.value("pid", -2) ||
        t1 - s.value("t", 0.0) > in.rate_window_seconds + 5) {
      continue;
    }
    if ((queue_known && !known(s, "queued_lsn")) || (applied_known && !known(s, "applied_lsn")) ||
        (source_known && !known(s, "source_lsn"))) {
      continue;
    }
    oldest = &s;
    break;
  }
  if (oldest == nullptr || oldest == &newest) return false;
  double span = t1 - oldest->value("t", 0.0);
  if (span <= 0) return false;
  auto delta = [&](const char* key) {
    uint64_t a = oldest->value(key, uint64_t{0}), b = newest.value(key, uint64_t{0});
    return b > a ? static_cast<double>(b - a) / span : 0.0;
  };
  r->rates_from = "samples";
  r->rate_span_seconds = span;
  r->queued_tps = delta("queued_txns");
  r->queued_bytes_per_second = queue_known ? delta("queued_lsn") : 0.0;
  r->applied_tps = delta("applied_txns");
  r->applied_bytes_per_second = applied_known ? delta("applied_lsn") : 0.0;
  if (source_known) r->source_bytes_per_second = delta("source_lsn");
  return true;
}

// Bytes per second from `before` to `after`, when both positions are known (see above).
std::optional<double> LsnRate(Lsn before, Lsn after, double seconds) {
  if (!before.IsValid() || !after.IsValid() || seconds <= 0) return std::nullopt;
  return static_cast<double>(after.BytesSince(before)) / seconds;
}

}  // namespace

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string FormatEta(std::optional<double> seconds, uint64_t lag_bytes) {
  if (lag_bytes == 0) return "caught up";
  if (!seconds) return "unknown";
  auto s = static_cast<int64_t>(std::ceil(*seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60);
}

Result<StatusReport> CollectStatus(queue::WorkQueue* queue, const StatusInputs& in,
                                   const StatusReport* previous) {
  StatusReport r;
  r.name = in.name;
  r.time = PgTimestamp::Now();
  r.queue_location = in.queue_location;
  r.rate_window_seconds = in.rate_window_seconds;
  r.source_label = in.source_label;
  r.target_label = in.target_label;
  r.source_error = in.source_error;
  r.target_error = in.target_error;

  // Target first: the queue scan needs the applied position.
  if (in.target != nullptr) {
    auto applied = applier::ReadTargetPosition(*in.target, in.name, /*flushed=*/false);
    auto flushed = applied.ok() ? applier::ReadTargetPosition(*in.target, in.name, true) : applied;
    if (applied.ok() && flushed.ok()) {
      r.target_known = true;
      r.applied_lsn = *applied;
      r.applied_flushed_lsn = *flushed;
    } else {
      r.target_error = ScrubSecrets((applied.ok() ? flushed : applied).status().message());
    }
  }
  if (in.source != nullptr) {
    auto src = ReadSourcePositions(*in.source, in.name);
    if (src.ok()) {
      r.source = *src;
    } else {
      r.source_error = ScrubSecrets(src.status().message());
    }
  }

  PGB_ASSIGN_OR_RETURN(r.queue_size_bytes, queue->SizeBytes());
  PGB_ASSIGN_OR_RETURN(r.queue_first_commit_lsn, queue->FirstCommitLsn());
  PGB_ASSIGN_OR_RETURN(r.queue_last_commit_lsn, queue->LastCommitLsn());
  PGB_ASSIGN_OR_RETURN(r.queue_last_end_lsn, queue->LastEndLsn());
  r.queue_end_seen = std::max(r.queue_last_end_lsn, previous ? previous->queue_end_seen : Lsn());
  r.rate_span_seconds = in.rate_window_seconds;
  PGB_ASSIGN_OR_RETURN(auto samples, queue->GetMeta(kRateSamplesMetaKey));
  bool from_samples = samples && RatesFromSamples(*samples, in, &r);
  // With rates from samples only the unapplied transactions are read (to count them).
  r.whole_scan = !from_samples;
  if (r.whole_scan || r.target_known) {
    PGB_RETURN_IF_ERROR(ScanQueue(queue, in, r.whole_scan ? Lsn() : r.applied_lsn, &r));
  }
  PGB_ASSIGN_OR_RETURN(auto last_error, queue->GetMeta(kLastErrorMetaKey));
  if (last_error) {
    json e = json::parse(*last_error, nullptr, /*allow_exceptions=*/false);
    r.last_error = e.is_discarded() ? json{{"message", ScrubSecrets(*last_error)}} : e;
  }

  // Lag: known when the target's position is (the queue alone cannot say what was applied).
  if (r.target_known) {
    PGB_ASSIGN_OR_RETURN(r.oldest_unapplied, OldestUnapplied(queue, r.applied_lsn));
    r.lag_known = true;
    // Before anything was applied, the queued work starts at the queue's first transaction.
    Lsn base = r.applied_lsn;
    if (!base.IsValid() && r.oldest_unapplied) base = r.oldest_unapplied->commit_lsn;
    r.apply_lag_bytes =
        r.oldest_unapplied ? LagBytes(std::nullopt, r.queue_last_end_lsn, base, true) : 0;
    r.decoder_lag_bytes = LagBytes(r.source, Lsn(), Lsn(), false);
    r.lag_bytes = r.apply_lag_bytes + r.decoder_lag_bytes;
    r.lag_seconds = LagSeconds(r.oldest_unapplied, r.time);
  } else {
    r.decoder_lag_bytes = LagBytes(r.source, Lsn(), Lsn(), false);
  }

  if (previous != nullptr) {
    double dt = static_cast<double>(r.time.micros - previous->time.micros) / 1e6;
    if (dt > 0) {
      r.interval_seconds = dt;
      if (r.source && previous->source) {
        r.source_bytes_per_second_interval =
            LsnRate(previous->source->current_lsn, r.source->current_lsn, dt);
      }
      r.queued_bytes_per_second_interval = LsnRate(previous->queue_end_seen, r.queue_end_seen, dt);
      if (r.target_known && previous->target_known) {
        r.applied_bytes_per_second_interval = LsnRate(previous->applied_lsn, r.applied_lsn, dt);
      }
    }
  }

  double rate = r.applied_bytes_per_second_interval.value_or(r.applied_bytes_per_second);
  if (r.lag_known && r.lag_bytes > 0 && rate > 0) {
    r.eta_seconds = static_cast<double>(r.lag_bytes) / rate;
  }
  if (r.lag_known && r.lag_bytes == 0) r.eta_seconds = 0.0;
  r.eta_text = r.lag_known ? FormatEta(r.eta_seconds, r.lag_bytes) : "unknown";
  return r;
}

nlohmann::json StatusToJson(const StatusReport& r) {
  json j;
  j["schema_version"] = 1;
  j["name"] = r.name;
  j["time"] = r.time.ToString();

  json source = nullptr;
  if (!r.source_label.empty()) {
    source = {{"server", r.source_label},
              {"error", r.source_error.empty() ? json(nullptr) : json(r.source_error)}};
    if (r.source) {
      source["current_lsn"] = LsnJson(r.source->current_lsn);
      source["flush_lsn"] = LsnJson(r.source->flush_lsn);
      source["slot"] = {{"name", r.name},
                        {"exists", r.source->slot_exists},
                        {"active", r.source->slot_active},
                        {"restart_lsn", LsnJson(r.source->restart_lsn)},
                        {"confirmed_flush_lsn", LsnJson(r.source->confirmed_flush_lsn)},
                        {"sent_lsn", LsnJson(r.source->sent_lsn)},
                        {"wal_held_bytes", r.source->wal_held_bytes}};
    }
  }
  j["source"] = source;

  j["queue"] = {
      {"location", r.queue_location},
      {"size_bytes", r.queue_size_bytes},
      {"first_commit_lsn", LsnJson(r.queue_first_commit_lsn)},
      {"last_commit_lsn", LsnJson(r.queue_last_commit_lsn)},
      {"last_end_lsn", LsnJson(r.queue_last_end_lsn)},
      {"transactions", r.whole_scan ? json(r.queue_transactions) : json(nullptr)},
      {"unapplied_transactions", r.target_known ? json(r.unapplied_transactions) : json(nullptr)},
      {"scan_truncated", r.scan_truncated}};

  json target = nullptr;
  if (!r.target_label.empty()) {
    target = {
        {"server", r.target_label},
        {"error", r.target_error.empty() ? json(nullptr) : json(r.target_error)},
        {"applied_lsn", r.target_known ? LsnJson(r.applied_lsn) : json(nullptr)},
        {"applied_flushed_lsn", r.target_known ? LsnJson(r.applied_flushed_lsn) : json(nullptr)}};
  }
  j["target"] = target;

  // The pipeline, in order. position: the stage's LSN; lag_bytes: WAL this stage still has to
  // pass on (null when unknown).
  Lsn decoder_pos;
  if (r.source) {
    decoder_pos = r.source->slot_active && r.source->sent_lsn.IsValid()
                      ? r.source->sent_lsn
                      : r.source->confirmed_flush_lsn;
  }
  json stages = json::array();
  stages.push_back({{"stage", "source"},
                    {"position", r.source ? LsnJson(r.source->current_lsn) : json(nullptr)},
                    {"lag_bytes", nullptr}});
  stages.push_back({{"stage", "decoder"},
                    {"position", LsnJson(decoder_pos)},
                    {"lag_bytes", r.source ? json(r.decoder_lag_bytes) : json(nullptr)}});
  stages.push_back(
      {{"stage", "queue"}, {"position", LsnJson(r.queue_last_end_lsn)}, {"lag_bytes", nullptr}});
  stages.push_back({{"stage", "applier"},
                    {"position", r.target_known ? LsnJson(r.applied_lsn) : json(nullptr)},
                    {"lag_bytes", r.lag_known ? json(r.apply_lag_bytes) : json(nullptr)}});
  stages.push_back({{"stage", "target"},
                    {"position", r.target_known ? LsnJson(r.applied_flushed_lsn) : json(nullptr)},
                    {"lag_bytes", nullptr}});
  j["stages"] = stages;

  j["lag"] = {
      {"known", r.lag_known},
      {"bytes", r.lag_known ? json(r.lag_bytes) : json(nullptr)},
      {"seconds", r.lag_known ? json(Round3(r.lag_seconds)) : json(nullptr)},
      {"oldest_unapplied_commit_lsn",
       r.oldest_unapplied ? LsnJson(r.oldest_unapplied->commit_lsn) : json(nullptr)},
      {"oldest_unapplied_commit_time",
       r.oldest_unapplied ? json(r.oldest_unapplied->commit_time.ToString()) : json(nullptr)}};

  json interval = nullptr;
  if (r.interval_seconds) {
    interval = {{"seconds", Round3(*r.interval_seconds)},
                {"source_bytes_per_second", OptJson(r.source_bytes_per_second_interval)},
                {"queued_bytes_per_second", OptJson(r.queued_bytes_per_second_interval)},
                {"applied_bytes_per_second", OptJson(r.applied_bytes_per_second_interval)}};
  }
  j["rates"] = {
      {"window_seconds", Round3(r.rate_span_seconds)},
      {"from", r.rates_from},
      {"queued_transactions_per_second", Round3(r.queued_tps)},
      {"queued_bytes_per_second", Round3(r.queued_bytes_per_second)},
      {"applied_transactions_per_second",
       r.target_known ? json(Round3(r.applied_tps)) : json(nullptr)},
      {"applied_bytes_per_second",
       r.target_known ? json(Round3(r.applied_bytes_per_second)) : json(nullptr)},
      {"source_wal_bytes_per_second",
       r.source_bytes_per_second ? json(Round3(*r.source_bytes_per_second)) : json(nullptr)},
      {"interval", interval}};
  j["eta"] = {{"seconds", r.eta_seconds ? json(Round3(*r.eta_seconds)) : json(nullptr)},
              {"text", r.eta_text}};
  j["last_error"] = r.last_error ? *r.last_error : json(nullptr);
  return j;
}

std::string StatusToText(const StatusReport& r) {
  std::string out =
      fmt::format("pgbaton status: migration \"{}\" at {}\n\n", r.name, r.time.ToString());
  Lsn decoder_pos;
  if (r.source) {
    decoder_pos = r.source->slot_active && r.source->sent_lsn.IsValid()
                      ? r.source->sent_lsn
                      : r.source->confirmed_flush_lsn;
  }
  out += fmt::format("  {:<9} {:<20} {}\n", "stage", "position", "behind");
  out += fmt::format("  {:<9} {:<20} {}\n", "source",
                     r.source ? LsnText(r.source->current_lsn) : "-", "");
  out += fmt::format("  {:<9} {:<20} {}\n", "decoder", LsnText(decoder_pos),
                     r.source ? HumanBytes(r.decoder_lag_bytes) : "-");
  out += fmt::format("  {:<9} {:<20} {}\n", "queue", LsnText(r.queue_last_end_lsn), "");
  out +=
      fmt::format("  {:<9} {:<20} {}\n", "applier", r.target_known ? LsnText(r.applied_lsn) : "-",
                  r.lag_known ? HumanBytes(r.apply_lag_bytes) : "-");
  out += fmt::format("  {:<9} {:<20} {}\n\n", "target",
                     r.target_known ? LsnText(r.applied_flushed_lsn) : "-", "(flushed)");
  if (r.lag_known) {
    out += fmt::format("lag:      {} ({} bytes), {:.1f} s\n", HumanBytes(r.lag_bytes), r.lag_bytes,
                       r.lag_seconds);
  } else {
    out += "lag:      unknown (pass --target to compare with what the target applied)\n";
  }
  out += fmt::format("eta:      {}\n", r.eta_text);
  auto per_second = [](std::optional<double> v) {
    return v ? HumanBytes(static_cast<uint64_t>(*v)) + "/s" : std::string("-");
  };
  if (r.rates_from == "samples") {
    out += fmt::format("rates:    queued {:.1f} txn/s {}/s", r.queued_tps,
                       HumanBytes(static_cast<uint64_t>(r.queued_bytes_per_second)));
    if (r.target_known) {
      out += fmt::format(", applied {:.1f} txn/s {}/s", r.applied_tps,
                         HumanBytes(static_cast<uint64_t>(r.applied_bytes_per_second)));
    }
    if (r.source_bytes_per_second) {
      out += fmt::format(", source WAL {}", per_second(r.source_bytes_per_second));
    }
    out += fmt::format(" (last {:.0f} s)\n", r.rate_span_seconds);
  } else {
    // No running process records samples: what the queue still holds is all there is to count,
    // by the source commit time of each transaction.
    out += fmt::format("rates:    committed on the source and still queued {:.1f} txn/s {}/s",
                       r.queued_tps, HumanBytes(static_cast<uint64_t>(r.queued_bytes_per_second)));
    if (r.target_known) {
      out += fmt::format(", of them applied {:.1f} txn/s {}/s", r.applied_tps,
                         HumanBytes(static_cast<uint64_t>(r.applied_bytes_per_second)));
    }
    out += fmt::format(" (last {} s, no running pgbaton records rates)\n", r.rate_window_seconds);
  }
  if (r.interval_seconds) {
    out += fmt::format("          since last refresh ({:.1f} s): queued {}", *r.interval_seconds,
                       per_second(r.queued_bytes_per_second_interval));
    if (r.target_known) {
      out += fmt::format(", applied {}", per_second(r.applied_bytes_per_second_interval));
    }
    if (r.source) {
      out += fmt::format(", source WAL {}", per_second(r.source_bytes_per_second_interval));
    }
    out += "\n";
  }
  if (!r.source_label.empty()) {
    out += fmt::format("source:   {}", r.source_label);
    if (!r.source_error.empty()) out += fmt::format(" (error: {})", r.source_error);
    out += "\n";
    if (r.source && r.source->slot_exists) {
      out += fmt::format(
          "slot:     \"{}\" {}, confirmed_flush_lsn {}, restart_lsn {}, WAL held {}\n", r.name,
          r.source->slot_active ? "active" : "inactive", LsnText(r.source->confirmed_flush_lsn),
          LsnText(r.source->restart_lsn), HumanBytes(r.source->wal_held_bytes));
    } else if (r.source) {
      out += fmt::format("slot:     \"{}\" does not exist\n", r.name);
    }
  }
  if (!r.target_label.empty()) {
    out += fmt::format("target:   {}", r.target_label);
    if (!r.target_error.empty()) out += fmt::format(" (error: {})", r.target_error);
    out += "\n";
  }
  out += fmt::format("queue:    {}, {}", r.queue_location, HumanBytes(r.queue_size_bytes));
  if (r.whole_scan) out += fmt::format(", {} transactions", r.queue_transactions);
  if (r.target_known) out += fmt::format(" ({} not applied)", r.unapplied_transactions);
  if (r.scan_truncated) out += " (scan stopped early)";
  out += "\n";
  if (r.last_error) {
    out += fmt::format("last error: {}\n", r.last_error->is_object()
                                               ? r.last_error->value("message", std::string())
                                               : r.last_error->dump());
    if (r.last_error->is_object()) {
      std::string hint = r.last_error->value("hint", std::string());
      if (!hint.empty()) out += fmt::format("  hint: {}\n", hint);
      out += fmt::format("  ({} {}, {})\n", r.last_error->value("verb", std::string("?")),
                         r.last_error->value("code", std::string("?")),
                         r.last_error->value("time", std::string("?")));
    }
  } else {
    out += "last error: none recorded\n";
  }
  return out;
}

}  // namespace pgbaton::tools::status

// The Prometheus endpoint: a small HTTP server (cpp-httplib) on its own thread that answers
// GET /metrics with the registry's text rendering. It binds to loopback unless the operator opts
// in to a remote address with --metrics-allow-remote: metrics name tables and positions, which is
// not for everyone on the network. Commands that run for long (run, stream, apply) start it with
// StartMetricsServer from the flags AddMetricsOptions registers.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"

namespace pgbaton::tools {

struct MetricsOptions {
  std::string addr;           // "--metrics-addr H:P"; empty: no endpoint
  bool allow_remote = false;  // "--metrics-allow-remote": permit a non-loopback address
};

// Adds --metrics-addr and --metrics-allow-remote to `sub`.
void AddMetricsOptions(CLI::App* sub, MetricsOptions* options);

// A parsed listen address: host as given ("127.0.0.1", "::1", "localhost") and port (0: any).
struct ListenAddress {
  std::string host;
  int port = 0;
};

// Parses "H:P", "[v6]:P" or ":P" (host defaults to 127.0.0.1). Errors: kUsage naming the text.
Result<ListenAddress> ParseListenAddress(const std::string& addr);

// True when every address `host` resolves to is a loopback one (127.0.0.0/8, ::1).
// Errors: kUsage when the name cannot be resolved.
Result<bool> IsLoopbackHost(const std::string& host);

class MetricsServer {
 public:
  virtual ~MetricsServer() = default;
  // The port actually bound (useful when the address asked for port 0).
  virtual int port() const = 0;
  virtual const std::string& host() const = 0;
  // Stops serving and joins the thread; also done by the destructor. Idempotent.
  virtual void Stop() = 0;
};

// Starts serving `registry` (Registry::Default() when null) at `addr` on a background thread.
// Errors: kUsage for a malformed address, or a non-loopback one without `allow_remote` (with a
// hint naming --metrics-allow-remote); kIo when the port cannot be bound (in use, no permission).
// The returned server is stopped when destroyed. Thread-safe with respect to metric updates.
Result<std::unique_ptr<MetricsServer>> StartMetricsServer(const std::string& addr,
                                                          bool allow_remote,
                                                          metrics::Registry* registry = nullptr);

// Starts the endpoint when `options.addr` is set; returns null (and ok) when it is not.
Result<std::unique_ptr<MetricsServer>> StartMetricsServer(const MetricsOptions& options);

}  // namespace pgbaton::tools

// The golden workload: schema and transactions that make a server send every pgoutput message
// kind pgbaton handles over a wide set of types, and a recorder that captures the raw XLogData
// payloads of a pgoutput slot into the capture file format (tests/support/capture_file.h).
#pragma once

#include <string>

#include "common/status.h"
#include "tests/support/pg_server.h"

namespace pgbaton::testing {

struct GoldenCapture {
  std::string stream;    // the decoder's own options (DefaultPgOutputOptions)
  std::string twophase;  // two_phase 'on' as well (15+; empty before)
};

// Starts nothing: runs the workload on `server` (a fresh cluster with max_prepared_transactions
// and logical_decoding_work_mem = 64kB) and records both slots until the workload's end marker.
Result<GoldenCapture> CaptureGoldenWorkload(PgServer& server);

// The server settings the workload needs.
PgServerOptions GoldenServerOptions(int major);

}  // namespace pgbaton::testing

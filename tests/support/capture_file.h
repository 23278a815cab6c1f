// Capture files: raw pgoutput messages as a server sent them, for golden tests, the fuzzer's
// seed corpus and the parser benchmark. Part of the test kit (the shipped binary never reads or
// writes them); in the decoder's namespace because they hold the decoder's input. Format: the 8
// bytes "PGBCAP01", then per message a big-endian uint64 WAL start LSN, a big-endian uint32 length
// and that many payload bytes.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace pgbaton::decoder {

struct CapturedMessage {
  Lsn wal_start;
  std::string payload;
};

// Appends one message to `out` in the capture format (write kCaptureMagic first).
void AppendCaptured(std::string* out, Lsn wal_start, std::string_view payload);
inline constexpr std::string_view kCaptureMagic = "PGBCAP01";

// Reads a whole capture file. Errors: kIo (cannot read), kProtocol (bad magic or truncated).
Result<std::vector<CapturedMessage>> ReadCaptureFile(const std::string& path);
// Parses capture bytes. Errors: kProtocol naming the offset.
Result<std::vector<CapturedMessage>> ParseCapture(std::string_view bytes);

}  // namespace pgbaton::decoder

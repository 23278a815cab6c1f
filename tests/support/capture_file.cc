#include "tests/support/capture_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace pgbaton::decoder {

void AppendCaptured(std::string* out, Lsn wal_start, std::string_view payload) {
  for (int i = 7; i >= 0; --i)
    out->push_back(static_cast<char>((wal_start.value() >> (8 * i)) & 0xff));
  uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(payload);
}

Result<std::vector<CapturedMessage>> ParseCapture(std::string_view b) {
  if (b.substr(0, kCaptureMagic.size()) != kCaptureMagic) {
    return Status::Error(ErrorCode::kProtocol, "capture: bad magic at offset 0");
  }
  std::vector<CapturedMessage> out;
  size_t pos = kCaptureMagic.size();
  while (pos < b.size()) {
    if (b.size() - pos < 12) {
      return Status::Error(ErrorCode::kProtocol,
                           fmt::format("capture: truncated header at offset {}", pos));
    }
    uint64_t lsn = 0;
    for (int i = 0; i < 8; ++i) lsn = (lsn << 8) | static_cast<uint8_t>(b[pos + i]);
    uint32_t n = 0;
    for (int i = 8; i < 12; ++i) n = (n << 8) | static_cast<uint8_t>(b[pos + i]);
    pos += 12;
    if (b.size() - pos < n) {
      return Status::Error(ErrorCode::kProtocol,
                           fmt::format("capture: truncated message at offset {}", pos));
    }
    out.push_back({Lsn(lsn), std::string(b.substr(pos, n))});
    pos += n;
  }
  return out;
}

Result<std::vector<CapturedMessage>> ReadCaptureFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::Error(ErrorCode::kIo, fmt::format("capture file \"{}\": cannot open", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = ParseCapture(ss.str());
  if (!r.ok()) return r.status().WithContext(fmt::format("capture file \"{}\"", path));
  return r;
}

}  // namespace pgbaton::decoder

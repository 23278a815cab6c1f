#include "decoder/pgoutput_parser.h"

#include <fmt/format.h>

#include <cstring>

namespace pgbaton::decoder {
namespace {

// A bounds-checked big-endian reader. The first failure sticks: later reads return zeros, so
// the parse functions can read straight through and check ok() once at the end.
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : b_(bytes), what_(what) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t offset() const { return pos_; }
  size_t remaining() const { return ok() ? b_.size() - pos_ : 0; }

  uint8_t U8() {
    if (!Need(1, "byte")) return 0;
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint16_t U16() { return static_cast<uint16_t>(Int(2, "int16")); }
  uint32_t U32() { return static_cast<uint32_t>(Int(4, "int32")); }
  uint64_t U64() { return Int(8, "int64"); }
  Lsn ReadLsn() { return Lsn(U64()); }
  PgTimestamp ReadTime() { return PgTimestamp{static_cast<int64_t>(U64())}; }
  Xid ReadXid() { return Xid{U32()}; }

  // A NUL-terminated string.
  std::string CString() {
    if (!ok()) return {};
    const void* nul = std::memchr(b_.data() + pos_, '\0', b_.size() - pos_);
    if (nul == nullptr) {
      Fail("unterminated string");
      return {};
    }
    size_t len = static_cast<const char*>(nul) - (b_.data() + pos_);
    std::string s(b_.substr(pos_, len));
    pos_ += len + 1;
    return s;
  }
  std::string Bytes(size_t n) {
    if (!Need(n, "value")) return {};
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  void Fail(std::string_view why) {
    if (!ok()) return;
    error_ = fmt::format("pgoutput: {} in {} message at offset {} (of {} bytes)", why, what_, pos_,
                         b_.size());
  }

 private:
  bool Need(size_t n, const char* what) {
    if (!ok()) return false;
    if (b_.size() - pos_ < n) {
      Fail(fmt::format("truncated {}", what));
      return false;
    }
    return true;
  }
  uint64_t Int(size_t n, const char* what) {
    if (!Need(n, what)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    return v;
  }

  std::string_view b_;
  const char* what_;
  size_t pos_ = 0;
  std::string error_;
};

// TupleData: Int16 column count, then per column a marker and, for 't' and 'b', a length and
// that many bytes.
TupleData ReadTuple(Reader& r) {
  TupleData t;
  uint16_t n = r.U16();
  if (!r.ok()) return t;
  // Each column needs at least its marker byte: refuse a count the input cannot hold before
  // reserving memory for it.
  if (n > r.remaining()) {
    r.Fail(fmt::format("column count {} exceeds the message", n));
    return t;
  }
  t.reserve(n);
  for (uint16_t i = 0; i < n && r.ok(); ++i) {
    queue::Value v;
    uint8_t kind = r.U8();
    switch (kind) {
      case 'n':
        v.kind = queue::ValueKind::kNull;
        break;
      case 'u':
        v.kind = queue::ValueKind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        v.kind = kind == 't' ? queue::ValueKind::kText : queue::ValueKind::kBinary;
        uint32_t len = r.U32();
        if (r.ok() && len > r.remaining()) {
          r.Fail(fmt::format("value length {} of column {} exceeds the message", len, i + 1));
          break;
        }
        v.data = r.Bytes(len);
        break;
      }
      default:
        if (r.ok()) {
          r.Fail(fmt::format("unknown tuple column marker 0x{:02x} for column {}", kind, i + 1));
        }
        break;
    }
    t.push_back(std::move(v));
  }
  return t;
}

// A tuple introduced by its kind byte ('N', 'K' or 'O').
TupleData ReadTaggedTuple(Reader& r, char expected_a, char expected_b, char* got) {
  uint8_t tag = r.U8();
  if (r.ok() && tag != static_cast<uint8_t>(expected_a) &&
      tag != static_cast<uint8_t>(expected_b)) {
    r.Fail(fmt::format("unexpected tuple tag 0x{:02x}", tag));
    return {};
  }
  if (got != nullptr) *got = static_cast<char>(tag);
  return ReadTuple(r);
}

const char* TypeName(uint8_t t) {
  switch (t) {
    case 'B':
      return "begin";
    case 'C':
      return "commit";
    case 'O':
      return "origin";
    case 'R':
      return "relation";
    case 'Y':
      return "type";
    case 'I':
      return "insert";
    case 'U':
      return "update";
    case 'D':
      return "delete";
    case 'T':
      return "truncate";
    case 'M':
      return "message";
    case 'S':
      return "stream start";
    case 'E':
      return "stream stop";
    case 'c':
      return "stream commit";
    case 'A':
      return "stream abort";
    case 'b':
      return "begin prepare";
    case 'P':
      return "prepare";
    case 'K':
      return "commit prepared";
    case 'r':
      return "rollback prepared";
    case 'p':
      return "stream prepare";
    default:
      return nullptr;
  }
}

}  // namespace

std::string_view MessageName(const PgOutputMessage& m) {
  static constexpr const char* kNames[] = {
      "begin",        "commit",          "origin",           "relation",     "type",
      "insert",       "update",          "delete",           "truncate",     "message",
      "stream start", "stream stop",     "stream commit",    "stream abort", "begin prepare",
      "prepare",      "commit prepared", "rollback prepared"};
  if (const auto* p = std::get_if<PrepareMsg>(&m); p != nullptr && p->streamed) {
    return "stream prepare";
  }
  return kNames[m.index()];
}

Result<PgOutputMessage> PgOutputParser::Parse(std::string_view bytes) {
  if (bytes.empty()) {
    return Status::Error(ErrorCode::kProtocol, "pgoutput: empty message at offset 0");
  }
  uint8_t type = static_cast<uint8_t>(bytes[0]);
  const char* what = TypeName(type);
  if (what == nullptr) {
    return Status::Error(
        ErrorCode::kProtocol,
        fmt::format("pgoutput: unknown message type 0x{:02x} at offset 0 (of {} bytes)", type,
                    bytes.size()));
  }
  Reader r(bytes, what);
  r.U8();
  bool next_in_stream = in_stream_;
  auto stream_xid = [&]() -> std::optional<Xid> {
    if (!in_stream_) return std::nullopt;
    return r.ReadXid();
  };

  PgOutputMessage out;
  switch (type) {
    case 'B': {
      BeginMsg m;
      m.final_lsn = r.ReadLsn();
      m.commit_time = r.ReadTime();
      m.xid = r.ReadXid();
      out = m;
      break;
    }
    case 'C': {
      CommitMsg m;
      m.flags = r.U8();
      m.commit_lsn = r.ReadLsn();
      m.end_lsn = r.ReadLsn();
      m.commit_time = r.ReadTime();
      out = m;
      break;
    }
    case 'O': {
      OriginMsg m;
      m.origin_lsn = r.ReadLsn();
      m.name = r.CString();
      out = std::move(m);
      break;
    }
    case 'R': {
      RelationMsg m;
      m.xid = stream_xid();
      m.id = RelationId{r.U32()};
      m.schema = r.CString();
      m.name = r.CString();
      m.identity = r.U8();
      if (r.ok() && m.identity != 'd' && m.identity != 'n' && m.identity != 'f' &&
          m.identity != 'i') {
        r.Fail(fmt::format("unknown replica identity 0x{:02x}", m.identity));
      }
      uint16_t n = r.U16();
      // A column needs at least 10 bytes (flags, "\0" name, type, typmod).
      if (r.ok() && n > r.remaining() / 10) {
        r.Fail(fmt::format("column count {} exceeds the message", n));
      }
      for (uint16_t i = 0; i < n && r.ok(); ++i) {
        RelationColumn c;
        c.flags = r.U8();
        c.name = r.CString();
        c.type_oid = r.U32();
        c.type_modifier = static_cast<int32_t>(r.U32());
        m.columns.push_back(std::move(c));
      }
      out = std::move(m);
      break;
    }
    case 'Y': {
      TypeMsg m;
      m.xid = stream_xid();
      m.oid = r.U32();
      m.schema = r.CString();
      m.name = r.CString();
      out = std::move(m);
      break;
    }
    case 'I': {
      InsertMsg m;
      m.xid = stream_xid();
      m.relation = RelationId{r.U32()};
      m.new_tuple = ReadTaggedTuple(r, 'N', 'N', nullptr);
      out = std::move(m);
      break;
    }
    case 'U': {
      UpdateMsg m;
      m.xid = stream_xid();
      m.relation = RelationId{r.U32()};
      uint8_t tag = r.U8();
      if (r.ok() && (tag == 'K' || tag == 'O')) {
        m.old_kind = static_cast<char>(tag);
        m.old_tuple = ReadTuple(r);
        tag = r.U8();
      }
      if (r.ok() && tag != 'N') r.Fail(fmt::format("unexpected tuple tag 0x{:02x}", tag));
      m.new_tuple = ReadTuple(r);
      out = std::move(m);
      break;
    }
    case 'D': {
      DeleteMsg m;
      m.xid = stream_xid();
      m.relation = RelationId{r.U32()};
      m.old_tuple = ReadTaggedTuple(r, 'K', 'O', &m.old_kind);
      out = std::move(m);
      break;
    }
    case 'T': {
      TruncateMsg m;
      m.xid = stream_xid();
      uint32_t n = r.U32();
      m.flags = r.U8();
      if (r.ok() && n > r.remaining() / 4) {
        r.Fail(fmt::format("relation count {} exceeds the message", n));
      }
      for (uint32_t i = 0; i < n && r.ok(); ++i) m.relations.push_back(RelationId{r.U32()});
      out = std::move(m);
      break;
    }
    case 'M': {
      LogicalMsg m;
      m.xid = stream_xid();
      m.transactional = (r.U8() & 1) != 0;
      m.lsn = r.ReadLsn();
      m.prefix = r.CString();
      uint32_t len = r.U32();
      if (r.ok() && len > r.remaining()) {
        r.Fail(fmt::format("content length {} exceeds the message", len));
      }
      m.content = r.Bytes(len);
      out = std::move(m);
      break;
    }
    case 'S': {
      if (in_stream_) r.Fail("stream start inside a streamed block");
      StreamStartMsg m;
      m.xid = r.ReadXid();
      m.first_segment = r.U8() == 1;
      next_in_stream = true;
      out = m;
      break;
    }
    case 'E':
      if (!in_stream_) r.Fail("stream stop outside a streamed block");
      next_in_stream = false;
      out = StreamStopMsg{};
      break;
    case 'c': {
      StreamCommitMsg m;
      m.xid = r.ReadXid();
      m.flags = r.U8();
      m.commit_lsn = r.ReadLsn();
      m.end_lsn = r.ReadLsn();
      m.commit_time = r.ReadTime();
      out = m;
      break;
    }
    case 'A': {
      StreamAbortMsg m;
      m.xid = r.ReadXid();
      m.subxid = r.ReadXid();
      // Protocol 4 with streaming = parallel appends the abort LSN and time.
      if (r.remaining() >= 16) {
        m.abort_lsn = r.ReadLsn();
        m.abort_time = r.ReadTime();
      }
      out = m;
      break;
    }
    case 'b': {
      BeginPrepareMsg m;
      m.prepare_lsn = r.ReadLsn();
      m.end_lsn = r.ReadLsn();
      m.prepare_time = r.ReadTime();
      m.xid = r.ReadXid();
      m.gid = r.CString();
      out = std::move(m);
      break;
    }
    case 'P':
    case 'p': {
      PrepareMsg m;
      m.streamed = type == 'p';
      m.flags = r.U8();
      m.prepare_lsn = r.ReadLsn();
      m.end_lsn = r.ReadLsn();
      m.prepare_time = r.ReadTime();
      m.xid = r.ReadXid();
      m.gid = r.CString();
      out = std::move(m);
      break;
    }
    case 'K': {
      CommitPreparedMsg m;
      m.flags = r.U8();
      m.commit_lsn = r.ReadLsn();
      m.end_lsn = r.ReadLsn();
      m.commit_time = r.ReadTime();
      m.xid = r.ReadXid();
      m.gid = r.CString();
      out = std::move(m);
      break;
    }
    case 'r': {
      RollbackPreparedMsg m;
      m.flags = r.U8();
      m.prepare_end_lsn = r.ReadLsn();
      m.rollback_end_lsn = r.ReadLsn();
      m.prepare_time = r.ReadTime();
      m.rollback_time = r.ReadTime();
      m.xid = r.ReadXid();
      m.gid = r.CString();
      out = std::move(m);
      break;
    }
  }
  if (r.ok() && r.remaining() != 0) {
    r.Fail(fmt::format("{} unexpected trailing bytes", r.remaining()));
  }
  if (!r.ok()) return Status::Error(ErrorCode::kProtocol, r.error());
  in_stream_ = next_in_stream;
  return out;
}

}  // namespace pgbaton::decoder

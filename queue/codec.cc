#include "queue/codec.h"

#include <fmt/format.h>
#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace pgbaton::queue {
namespace {

constexpr size_t kHeaderSize = 7;  // version, type, flags, xxh32 (little-endian)
constexpr uint8_t kFlagZstd = 1;
// A decompressed body larger than this is refused as corrupt rather than allocated.
constexpr uint64_t kMaxBodyBytes = uint64_t{4} << 30;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}
void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// A bounds-checked reader over a body. Every getter returns false past the end.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (pos_ >= b_.size()) return false;
      uint8_t c = static_cast<uint8_t>(b_[pos_++]);
      r |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Varint32(uint32_t* v) {
    uint64_t x;
    if (!Varint(&x) || x > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool Byte(uint8_t* v) {
    if (pos_ >= b_.size()) return false;
    *v = static_cast<uint8_t>(b_[pos_++]);
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (b_.size() - pos_ < 8) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i)
      r |= static_cast<uint64_t>(static_cast<uint8_t>(b_[pos_ + i])) << (8 * i);
    pos_ += 8;
    *v = r;
    return true;
  }
  bool String(std::string* s) {
    uint64_t n;
    if (!Varint(&n) || n > b_.size() - pos_) return false;
    s->assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  // A count of items that each take at least one byte: refuses counts the body cannot hold.
  bool Count(uint64_t* n) { return Varint(n) && *n <= b_.size() - pos_; }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

uint32_t Checksum(std::string_view header3, std::string_view rest) {
  uint32_t seed = static_cast<uint8_t>(header3[0]) | (static_cast<uint8_t>(header3[1]) << 8) |
                  (static_cast<uint8_t>(header3[2]) << 16);
  return XXH32(rest.data(), rest.size(), seed);
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// Wraps `body` in an envelope, compressing it when allowed and smaller.
std::string Seal(RecordType type, const std::string& body, bool may_compress,
                 const EncodeOptions& options) {
  std::string out;
  out.resize(kHeaderSize);
  out[0] = static_cast<char>(kFormatVersion);
  out[1] = static_cast<char>(type);
  out[2] = 0;
  bool compressed = false;
  if (may_compress && body.size() >= options.compress_min_bytes) {
    thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
    std::string z;
    PutVarint(&z, body.size());
    size_t prefix = z.size();
    z.resize(prefix + ZSTD_compressBound(body.size()));
    size_t n = ZSTD_compressCCtx(cctx.get(), z.data() + prefix, z.size() - prefix, body.data(),
                                 body.size(), options.zstd_level);
    if (!ZSTD_isError(n) && prefix + n < body.size()) {
      z.resize(prefix + n);
      out[2] = static_cast<char>(kFlagZstd);
      out.append(z);
      compressed = true;
    }
  }
  if (!compressed) out.append(body);
  uint32_t sum =
      Checksum(std::string_view(out.data(), 3), std::string_view(out).substr(kHeaderSize));
  for (int i = 0; i < 4; ++i) out[3 + i] = static_cast<char>(sum >> (8 * i));
  return out;
}

Status Corrupt(std::string_view what, std::string_view why) {
  return Status::Error(ErrorCode::kQueueCorrupt,
                       fmt::format("queue record {} is corrupt: {}", what, why),
                       "the queue cannot be read past this record; restore it from the source by "
                       "recreating the queue (pgbaton cleanup, then copy again)");
}

// Checks the envelope and returns the (decompressed) body in `body`.
Status Open(std::string_view bytes, std::string_view what, RecordType expected,
            std::string* storage, std::string_view* body) {
  PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(bytes, what));
  if (info.type != expected) {
    return Corrupt(what, fmt::format("record type {} where {} was expected",
                                     static_cast<int>(info.type), static_cast<int>(expected)));
  }
  std::string_view rest = bytes.substr(kHeaderSize);
  if (!info.compressed) {
    *body = rest;
    return Status::Ok();
  }
  Reader r(rest);
  uint64_t raw_len;
  if (!r.Varint(&raw_len) || raw_len > kMaxBodyBytes) return Corrupt(what, "bad compressed length");
  size_t prefix = 0;
  while (static_cast<uint8_t>(rest[prefix]) & 0x80) ++prefix;
  ++prefix;
  storage->resize(raw_len);
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  size_t n = ZSTD_decompressDCtx(dctx.get(), storage->data(), storage->size(), rest.data() + prefix,
                                 rest.size() - prefix);
  if (ZSTD_isError(n) || n != raw_len) return Corrupt(what, "zstd body does not decompress");
  *body = *storage;
  return Status::Ok();
}

void PutTuple(std::string* out, const Tuple& t) {
  PutVarint(out, t.size());
  for (const Value& v : t) {
    out->push_back(static_cast<char>(v.kind));
    if (v.kind == ValueKind::kText || v.kind == ValueKind::kBinary) PutString(out, v.data);
  }
}
bool GetTuple(Reader* r, Tuple* t) {
  uint64_t n;
  if (!r->Count(&n)) return false;
  t->clear();
  t->resize(n);
  for (Value& v : *t) {
    uint8_t k;
    if (!r->Byte(&k) || k > static_cast<uint8_t>(ValueKind::kBinary)) return false;
    v.kind = static_cast<ValueKind>(k);
    if (v.kind == ValueKind::kText || v.kind == ValueKind::kBinary) {
      if (!r->String(&v.data)) return false;
    }
  }
  return true;
}

constexpr uint8_t kHasOld = 1, kOldKeyOnly = 2, kHasNew = 4;

void PutChange(std::string* out, const Change& c) {
  out->push_back(static_cast<char>(c.kind));
  PutVarint(out, c.relation.value);
  PutVarint(out, c.relation_version);
  uint8_t flags = (c.old_tuple ? kHasOld : 0) | (c.old_is_key_only ? kOldKeyOnly : 0) |
                  (c.new_tuple ? kHasNew : 0);
  out->push_back(static_cast<char>(flags));
  if (c.old_tuple) PutTuple(out, *c.old_tuple);
  if (c.new_tuple) PutTuple(out, *c.new_tuple);
  PutVarint(out, c.truncated.size());
  for (RelationId id : c.truncated) PutVarint(out, id.value);
  PutVarint(out, c.truncated_versions.size());
  for (uint32_t v : c.truncated_versions) PutVarint(out, v);
  out->push_back(static_cast<char>(c.truncate_flags));
  PutString(out, c.message_prefix);
  PutString(out, c.message_content);
}
bool GetChange(Reader* r, Change* c) {
  uint8_t kind, flags;
  if (!r->Byte(&kind) || kind < 1 || kind > static_cast<uint8_t>(ChangeKind::kMessage))
    return false;
  c->kind = static_cast<ChangeKind>(kind);
  if (!r->Varint32(&c->relation.value) || !r->Varint32(&c->relation_version) || !r->Byte(&flags)) {
    return false;
  }
  if (flags & ~(kHasOld | kOldKeyOnly | kHasNew)) return false;
  c->old_is_key_only = flags & kOldKeyOnly;
  c->old_tuple.reset();
  c->new_tuple.reset();
  if (flags & kHasOld) {
    c->old_tuple.emplace();
    if (!GetTuple(r, &*c->old_tuple)) return false;
  }
  if (flags & kHasNew) {
    c->new_tuple.emplace();
    if (!GetTuple(r, &*c->new_tuple)) return false;
  }
  uint64_t n;
  if (!r->Count(&n)) return false;
  c->truncated.resize(n);
  for (RelationId& id : c->truncated) {
    if (!r->Varint32(&id.value)) return false;
  }
  if (!r->Count(&n)) return false;
  c->truncated_versions.resize(n);
  for (uint32_t& v : c->truncated_versions) {
    if (!r->Varint32(&v)) return false;
  }
  return r->Byte(&c->truncate_flags) && r->String(&c->message_prefix) &&
         r->String(&c->message_content);
}

}  // namespace

void PutBigEndian64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(b, 8);
}
void PutBigEndian32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (24 - 8 * i));
  out->append(b, 4);
}
uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint32_t GetBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

Result<EnvelopeInfo> PeekEnvelope(std::string_view bytes, std::string_view what) {
  if (bytes.size() < kHeaderSize) return Corrupt(what, fmt::format("only {} bytes", bytes.size()));
  EnvelopeInfo info;
  info.version = static_cast<uint8_t>(bytes[0]);
  if (info.version > kFormatVersion) {
    return Status::Error(
        ErrorCode::kQueueFormat,
        fmt::format("queue record {} has format version {}, newer than {} which this "
                    "pgbaton reads",
                    what, info.version, kFormatVersion),
        "use the pgbaton release that wrote this queue, or a newer one");
  }
  if (info.version == 0) return Corrupt(what, "format version 0");
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i)
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[3 + i])) << (8 * i);
  if (stored != Checksum(bytes.substr(0, 3), bytes.substr(kHeaderSize))) {
    return Corrupt(what, "checksum mismatch");
  }
  uint8_t type = static_cast<uint8_t>(bytes[1]);
  if (type < 1 || type > static_cast<uint8_t>(RecordType::kAbort)) {
    return Corrupt(what, fmt::format("unknown record type {}", type));
  }
  info.type = static_cast<RecordType>(type);
  uint8_t flags = static_cast<uint8_t>(bytes[2]);
  if (flags & ~kFlagZstd) return Corrupt(what, fmt::format("unknown flags {}", flags));
  info.compressed = flags & kFlagZstd;
  return info;
}

std::string EncodeCommit(const StoredCommit& s) {
  const CommitRecord& c = s.commit;
  std::string b;
  b.reserve(64 + c.origin.size());
  PutFixed64(&b, c.commit_lsn.value());
  PutFixed64(&b, c.end_lsn.value());
  PutVarint(&b, c.xid.value);
  PutVarint(&b, ZigZag(c.commit_time.micros));
  PutString(&b, c.origin);
  PutVarint(&b, c.origin_lsn.value());
  PutVarint(&b, c.change_count);
  PutVarint(&b, c.chunk_count);
  PutVarint(&b, s.txn_ref);
  return Seal(RecordType::kCommit, b, false, {});
}

Status DecodeCommit(std::string_view bytes, std::string_view what, StoredCommit* out) {
  std::string storage;
  std::string_view body;
  PGB_RETURN_IF_ERROR(Open(bytes, what, RecordType::kCommit, &storage, &body));
  Reader r(body);
  CommitRecord& c = out->commit;
  uint64_t commit_lsn, end_lsn, time, origin_lsn;
  if (!r.Fixed64(&commit_lsn) || !r.Fixed64(&end_lsn) || !r.Varint32(&c.xid.value) ||
      !r.Varint(&time) || !r.String(&c.origin) || !r.Varint(&origin_lsn) ||
      !r.Varint(&c.change_count) || !r.Varint32(&c.chunk_count) || !r.Varint(&out->txn_ref) ||
      !r.AtEnd()) {
    return Corrupt(what, "malformed commit body");
  }
  c.commit_lsn = Lsn(commit_lsn);
  c.end_lsn = Lsn(end_lsn);
  c.commit_time.micros = UnZigZag(time);
  c.origin_lsn = Lsn(origin_lsn);
  return Status::Ok();
}

std::string EncodeChunk(const ChangeChunk& chunk, const EncodeOptions& options) {
  std::string b;
  PutVarint(&b, chunk.xid.value);
  PutVarint(&b, chunk.subxid.value);
  PutVarint(&b, chunk.seq);
  PutVarint(&b, chunk.changes.size());
  for (const Change& c : chunk.changes) PutChange(&b, c);
  return Seal(RecordType::kChunk, b, true, options);
}

Status DecodeChunk(std::string_view bytes, std::string_view what, ChangeChunk* out) {
  std::string storage;
  std::string_view body;
  PGB_RETURN_IF_ERROR(Open(bytes, what, RecordType::kChunk, &storage, &body));
  Reader r(body);
  uint64_t n;
  if (!r.Varint32(&out->xid.value) || !r.Varint32(&out->subxid.value) || !r.Varint32(&out->seq) ||
      !r.Count(&n)) {
    return Corrupt(what, "malformed chunk header");
  }
  out->changes.clear();
  out->changes.resize(n);
  for (Change& c : out->changes) {
    if (!GetChange(&r, &c)) return Corrupt(what, "malformed change");
  }
  if (!r.AtEnd()) return Corrupt(what, "trailing bytes after the changes");
  return Status::Ok();
}

QualifiedName SplitV1TypeName(std::string_view joined) {
  // Format 1 joined nspname and typname with a dot, unquoted. Built-in and most user types have
  // no dot in their schema name, so the first dot is where the schema ends; a name without a
  // dot is a built-in type of pg_catalog.
  size_t dot = joined.find('.');
  if (dot == std::string_view::npos) return QualifiedName{"pg_catalog", std::string(joined)};
  return QualifiedName{std::string(joined.substr(0, dot)), std::string(joined.substr(dot + 1))};
}

std::string EncodeRelation(const RelationDescriptor& rel, const EncodeOptions& options) {
  std::string b;
  PutVarint(&b, rel.id.value);
  PutVarint(&b, rel.version);
  PutString(&b, rel.schema);
  PutString(&b, rel.name);
  b.push_back(static_cast<char>(rel.identity));
  PutVarint(&b, rel.columns.size());
  for (const Column& c : rel.columns) {
    PutString(&b, c.name);
    PutString(&b, c.type.schema);  // format 2: the type's schema and name apart
    PutString(&b, c.type.name);
    PutVarint(&b, c.type_oid);
    PutVarint(&b, ZigZag(c.type_modifier));
    b.push_back(c.is_key ? 1 : 0);
  }
  return Seal(RecordType::kRelation, b, true, options);
}

Status DecodeRelation(std::string_view bytes, std::string_view what, RelationDescriptor* out) {
  std::string storage;
  std::string_view body;
  PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(bytes, what));
  PGB_RETURN_IF_ERROR(Open(bytes, what, RecordType::kRelation, &storage, &body));
  Reader r(body);
  uint8_t identity;
  uint64_t n;
  if (!r.Varint32(&out->id.value) || !r.Varint32(&out->version) || !r.String(&out->schema) ||
      !r.String(&out->name) || !r.Byte(&identity) || !r.Count(&n)) {
    return Corrupt(what, "malformed relation header");
  }
  if (identity != 'd' && identity != 'n' && identity != 'f' && identity != 'i') {
    return Corrupt(what, "unknown replica identity");
  }
  out->identity = static_cast<ReplicaIdentity>(identity);
  out->columns.clear();
  out->columns.resize(n);
  for (Column& c : out->columns) {
    uint64_t typmod;
    uint8_t key;
    bool ok = r.String(&c.name);
    if (info.version >= 2) {
      ok = ok && r.String(&c.type.schema) && r.String(&c.type.name);
    } else {
      std::string joined;
      ok = ok && r.String(&joined);
      c.type = SplitV1TypeName(joined);
    }
    if (!ok || !r.Varint32(&c.type_oid) || !r.Varint(&typmod) || !r.Byte(&key) || key > 1) {
      return Corrupt(what, "malformed column");
    }
    c.type_modifier = static_cast<int32_t>(UnZigZag(typmod));
    c.is_key = key == 1;
  }
  if (!r.AtEnd()) return Corrupt(what, "trailing bytes after the columns");
  return Status::Ok();
}

std::string EncodeMarker(RecordType type, Lsn lsn) {
  std::string b;
  PutFixed64(&b, lsn.value());
  return Seal(type, b, false, {});
}

Status DecodeMarker(std::string_view bytes, std::string_view what, RecordType* type, Lsn* lsn) {
  PGB_ASSIGN_OR_RETURN(EnvelopeInfo info, PeekEnvelope(bytes, what));
  if (info.type != RecordType::kDiscard && info.type != RecordType::kTrim) {
    return Corrupt(what, "not a marker record");
  }
  std::string storage;
  std::string_view body;
  PGB_RETURN_IF_ERROR(Open(bytes, what, info.type, &storage, &body));
  Reader r(body);
  uint64_t v;
  if (!r.Fixed64(&v) || !r.AtEnd()) return Corrupt(what, "malformed marker");
  *type = info.type;
  *lsn = Lsn(v);
  return Status::Ok();
}

std::string EncodeAbort(Xid xid, Xid subxid) {
  std::string b;
  PutVarint(&b, xid.value);
  PutVarint(&b, subxid.value);
  return Seal(RecordType::kAbort, b, false, {});
}

Status DecodeAbort(std::string_view bytes, std::string_view what, Xid* xid, Xid* subxid) {
  std::string storage;
  std::string_view body;
  PGB_RETURN_IF_ERROR(Open(bytes, what, RecordType::kAbort, &storage, &body));
  Reader r(body);
  if (!r.Varint32(&xid->value) || !r.Varint32(&subxid->value) || !r.AtEnd()) {
    return Corrupt(what, "malformed abort");
  }
  return Status::Ok();
}

}  // namespace pgbaton::queue

#include "tools/initial_copy/large_objects.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/pg.h"
#include "common/sql_ident.h"

namespace pgbaton::tools::copy {
namespace {

using Clock = std::chrono::steady_clock;

// An object's content goes from source to target in pieces: the first piece of every object of a
// batch in one source query (most objects are small), the rest of a big one piece by piece, so
// memory per worker stays bounded whatever the object's size.
constexpr int64_t kFirstPiece = 256 << 10;
constexpr int64_t kPiece = 4 << 20;
constexpr size_t kDigestBatch = 256;   // objects per md5 query
constexpr size_t kUnlinkBatch = 1000;  // objects per lo_unlink query
constexpr size_t kFlushBytes = 8 << 20;

// Every large object with its owner, normalized ACL (LargeObjectMeta::acl) and comment.
constexpr const char* kListSql = R"(
SELECT m.oid::text, pg_catalog.pg_get_userbyid(m.lomowner),
  coalesce((SELECT pg_catalog.string_agg(e, ',' ORDER BY e) FROM (
    SELECT CASE WHEN a.grantee = m.lomowner THEN '='
                WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END
           || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS e
    FROM pg_catalog.aclexplode(coalesce(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a) s),
    ''),
  pg_catalog.obj_description(m.oid, 'pg_largeobject')
FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid)";

// The OIDs of those still there, so that an object unlinked since the listing is skipped rather
// than an error (the source is not fenced when a DBA syncs before cutover).
constexpr const char* kExists =
    "EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata m WHERE m.oid = o)";

std::string OidArray(const std::vector<uint32_t>& oids) {
  std::string s = "{";
  for (size_t i = 0; i < oids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(oids[i]);
  }
  return s + "}";
}

Result<PgConn> Connect(const std::string& conninfo, const char* label, const std::string& app) {
  ConnectOptions co;
  co.label = label;
  co.application_name = app;
  return PgConn::Connect(conninfo, co);
}

// A source session, inside the snapshot when one is given.
Result<PgConn> OpenSource(const LargeObjectSyncOptions& o) {
  PGB_ASSIGN_OR_RETURN(PgConn src, Connect(o.source, "source", o.application_name));
  if (o.snapshot.empty()) return src;
  PGB_RETURN_IF_ERROR(src.Run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  Status st = src.Run(fmt::format("SET TRANSACTION SNAPSHOT {}", src.QuoteLiteral(o.snapshot)));
  if (!st.ok() && st.code() != ErrorCode::kConnection) {
    return Status::Error(ErrorCode::kSnapshotLost,
                         fmt::format("snapshot \"{}\" is lost: the source session that exported "
                                     "it ended ({})",
                                     o.snapshot, st.message()),
                         "run the same command again: it copies at a new snapshot");
  }
  PGB_RETURN_IF_ERROR(st);
  return src;
}

Result<std::vector<LargeObjectMeta>> ListMeta(PgConn& conn) {
  auto r = conn.Exec(kListSql);
  if (!r.ok()) {
    return r.status().WithContext(
        fmt::format("listing large objects on {} ({})", conn.label(), conn.description()));
  }
  std::vector<LargeObjectMeta> out;
  out.reserve(r->rows());
  for (int i = 0; i < r->rows(); ++i) {
    LargeObjectMeta m;
    m.oid = static_cast<uint32_t>(std::stoul(r->GetString(i, 0)));
    m.owner = r->GetString(i, 1);
    m.acl = r->GetString(i, 2);
    m.comment = r->GetOptional(i, 3);
    out.push_back(std::move(m));
  }
  return out;
}

// md5 of each object's content, computed by the server.
Result<std::map<uint32_t, std::string>> Digests(PgConn& conn, const std::vector<uint32_t>& oids) {
  auto r = conn.ExecParams(fmt::format("SELECT o::text, pg_catalog.md5(pg_catalog.lo_get(o)) "
                                       "FROM unnest($1::oid[]) o WHERE {}",
                                       kExists),
                           {OidArray(oids)});
  if (!r.ok()) {
    return r.status().WithContext(fmt::format("md5 of large objects {}..{} on {} ({})",
                                              oids.front(), oids.back(), conn.label(),
                                              conn.description()));
  }
  std::map<uint32_t, std::string> out;
  for (int i = 0; i < r->rows(); ++i) {
    out[static_cast<uint32_t>(std::stoul(r->GetString(i, 0)))] = r->GetString(i, 1);
  }
  return out;
}

// Runs `work(i, src, dst)` for i in [0, items) on up to `jobs` threads, each with its own pair of
// connections. The first error stops the others before their next item and is returned.
Status RunWorkers(const LargeObjectSyncOptions& o, size_t items,
                  const std::function<Status(size_t, PgConn&, PgConn&)>& work) {
  if (items == 0) return Status::Ok();
  const size_t n = std::min<size_t>(std::max(1, o.jobs), items);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first = Status::Ok();
  auto fail = [&](Status s) {
    std::lock_guard<std::mutex> l(mu);
    if (first.ok()) first = std::move(s);
    failed = true;
  };
  auto loop = [&] {
    auto src = OpenSource(o);
    if (!src.ok()) return fail(src.status());
    auto dst = Connect(o.target, "target", o.application_name);
    if (!dst.ok()) return fail(dst.status());
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= items) return;
      Status s = work(i, *src, *dst);
      if (!s.ok()) return fail(std::move(s));
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(loop);
  loop();
  for (auto& t : threads) t.join();
  return first;
}

// Where a write failed: the object named, and for a role missing on the target what to do.
Status WriteError(const Status& s, uint32_t oid) {
  Status w = s.WithContext(fmt::format("writing large object {} on target", oid));
  if (s.code() == ErrorCode::kNotFound && s.message().find("role") != std::string::npos) {
    return w.WithHint(
        "a role that owns or is granted this large object is missing on the target: create the "
        "roles there first (pgbaton globals --apply, or pg_dumpall --roles-only | psql), or "
        "copy with --no-owner");
  }
  return w;
}

// One target transaction: unlinks what is in the way, then writes `objs` from the source.
class BatchWriter {
 public:
  BatchWriter(const LargeObjectSyncOptions& o, PgConn& src, PgConn& dst)
      : o_(o), src_(src), dst_(dst) {}

  Result<uint64_t> Write(const std::vector<const LargeObjectMeta*>& objs) {
    std::vector<uint32_t> oids;
    for (const auto* m : objs) oids.push_back(m->oid);
    // The first piece of every object, in one query.
    auto first = src_.ExecParams(
        fmt::format("SELECT o::text, pg_catalog.encode(pg_catalog.lo_get(o, 0, {}), 'hex') "
                    "FROM unnest($1::oid[]) o WHERE {}",
                    kFirstPiece, kExists),
        {OidArray(oids)});
    if (!first.ok()) {
      return first.status().WithContext(
          fmt::format("reading large objects {}..{} on source", oids.front(), oids.back()));
    }
    std::map<uint32_t, int> row_of;
    for (int i = 0; i < first->rows(); ++i) {
      row_of[static_cast<uint32_t>(std::stoul(first->GetString(i, 0)))] = i;
    }
    PGB_RETURN_IF_ERROR(dst_.Run("BEGIN"));
    // An object already there (written by an earlier run, or changed on the source since) is
    // replaced whole: in the same transaction, so the target never lacks it.
    PGB_RETURN_IF_ERROR(UnlinkFirst(oids));
    uint64_t bytes = 0;
    for (const auto* m : objs) {
      auto it = row_of.find(m->oid);
      if (it == row_of.end()) continue;  // unlinked on the source since the listing
      std::string_view hex = first->Get(it->second, 1);
      bytes += hex.size() / 2;
      Append(fmt::format("SELECT pg_catalog.lo_from_bytea({}, pg_catalog.decode('{}', 'hex'));",
                         m->oid, hex));
      if (static_cast<int64_t>(hex.size() / 2) == kFirstPiece) {
        PGB_ASSIGN_OR_RETURN(uint64_t rest, CopyRest(m->oid));
        bytes += rest;
      }
      PGB_RETURN_IF_ERROR(AppendMeta(*m));
      if (sql_.size() > kFlushBytes) PGB_RETURN_IF_ERROR(Flush(m->oid));
    }
    PGB_RETURN_IF_ERROR(Flush(objs.back()->oid));
    PGB_RETURN_IF_ERROR(dst_.Run("COMMIT"));
    return bytes;
  }

 private:
  void Append(const std::string& sql) { sql_ += sql; }

  Status Flush(uint32_t oid) {
    if (sql_.empty()) return Status::Ok();
    Status s = dst_.Run(sql_);
    sql_.clear();
    return s.ok() ? s : WriteError(s, oid);
  }
  Status UnlinkFirst(const std::vector<uint32_t>& oids) {
    Status s =
        dst_.Run(fmt::format("SELECT pg_catalog.lo_unlink(o) FROM unnest('{}'::oid[]) o WHERE {}",
                             OidArray(oids), kExists));
    return s.ok() ? s : s.WithContext("unlinking large objects on target before writing them");
  }

  // The pieces of a big object after its first one.
  Result<uint64_t> CopyRest(uint32_t oid) {
    uint64_t bytes = 0;
    for (int64_t off = kFirstPiece;; off += kPiece) {
      PGB_RETURN_IF_ERROR(Flush(oid));
      auto r = src_.QueryValue(fmt::format(
          "SELECT pg_catalog.encode(pg_catalog.lo_get({}, {}, {}), 'hex')", oid, off, kPiece));
      if (!r.ok()) return r.status().WithContext(fmt::format("reading large object {}", oid));
      if (r->empty()) break;
      bytes += r->size() / 2;
      Status s = dst_.Run(fmt::format(
          "SELECT pg_catalog.lo_put({}, {}, pg_catalog.decode('{}', 'hex'))", oid, off, *r));
      if (!s.ok()) return WriteError(s, oid);
      if (static_cast<int64_t>(r->size() / 2) < kPiece) break;
    }
    return bytes;
  }

  Status AppendMeta(const LargeObjectMeta& m) {
    std::string owner = "CURRENT_USER";
    if (!o_.no_owner) {
      owner = QuoteIdent(m.owner);
      Append(fmt::format("ALTER LARGE OBJECT {} OWNER TO {};", m.oid, owner));
    }
    PGB_ASSIGN_OR_RETURN(std::vector<std::string> acl, AclStatements(m.oid, m.acl, owner));
    for (const auto& s : acl) Append(s + ";");
    if (m.comment) {
      Append(
          fmt::format("COMMENT ON LARGE OBJECT {} IS {};", m.oid, dst_.QuoteLiteral(*m.comment)));
    }
    return Status::Ok();
  }

  const LargeObjectSyncOptions& o_;
  PgConn& src_;
  PgConn& dst_;
  std::string sql_;
};

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

}  // namespace

std::string LargeObjectSyncReport::Summary(bool compared_only) const {
  const size_t same = compared - differing;
  if (compared_only) {
    return fmt::format(
        "{} large objects on source, {} on target: {} missing on target, {} differing, {} only "
        "on target, {} same (list {} ms, md5 {} ms)",
        source_objects, target_objects, missing, differing, extra, same, list_ms, digest_ms);
  }
  return fmt::format(
      "{} large objects on source, {} on target: {} created, {} replaced, {} unlinked, {} "
      "unchanged ({} bytes written; list {} ms, md5 {} ms, write {} ms)",
      source_objects, target_objects, missing, differing, extra, same, bytes_written, list_ms,
      digest_ms, write_ms);
}

Result<std::vector<std::string>> AclStatements(uint32_t oid, const std::string& acl,
                                               const std::string& owner_sql) {
  if (acl == "=:SELECT,=:UPDATE") return std::vector<std::string>{};  // the default ACL
  std::vector<std::string> out = {
      fmt::format("REVOKE ALL ON LARGE OBJECT {} FROM {}", oid, owner_sql)};
  size_t i = 0;
  auto bad = [&] {
    return Status::Error(ErrorCode::kInternal,
                         fmt::format("cannot read the ACL \"{}\" of large object {}", acl, oid));
  };
  while (i < acl.size()) {
    std::string grantee;
    if (acl[i] == '"') {
      // A quoted role name: up to the closing quote (`""` is a quote inside).
      size_t j = i + 1;
      for (; j < acl.size(); ++j) {
        if (acl[j] == '"') {
          if (j + 1 < acl.size() && acl[j + 1] == '"') {
            ++j;
            continue;
          }
          break;
        }
      }
      if (j >= acl.size()) return bad();
      grantee = acl.substr(i, j + 1 - i);
      i = j + 1;
    } else {
      size_t colon = acl.find(':', i);
      if (colon == std::string::npos) return bad();
      grantee = acl.substr(i, colon - i);
      i = colon;
      if (grantee == "=") grantee = owner_sql;
    }
    if (i >= acl.size() || acl[i] != ':') return bad();
    size_t end = acl.find(',', i);
    if (end == std::string::npos) end = acl.size();
    std::string priv = acl.substr(i + 1, end - i - 1);
    bool grantable = !priv.empty() && priv.back() == '*';
    if (grantable) priv.pop_back();
    if (priv != "SELECT" && priv != "UPDATE") return bad();
    if (grantee.empty()) return bad();
    out.push_back(fmt::format("GRANT {} ON LARGE OBJECT {} TO {}{}", priv, oid, grantee,
                              grantable ? " WITH GRANT OPTION" : ""));
    i = end == acl.size() ? end : end + 1;
  }
  return out;
}

Result<int64_t> CountLargeObjects(const std::string& conninfo, const std::string& label) {
  PGB_ASSIGN_OR_RETURN(PgConn c, Connect(conninfo, label.c_str(), "pgbaton"));
  PGB_ASSIGN_OR_RETURN(std::string n,
                       c.QueryValue("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata"));
  return std::stoll(n);
}

Result<LargeObjectSyncReport> SyncLargeObjects(const LargeObjectSyncOptions& o) {
  LargeObjectSyncReport rep;
  std::mutex mu;
  auto note = [&](uint32_t oid, const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    if (rep.examples.size() < o.max_reported) {
      rep.examples.push_back(fmt::format("large object {}: {}", oid, what));
    }
  };

  // 1. Both sides' metadata: which objects to create, unlink, replace, or compare by content.
  auto t = Clock::now();
  std::vector<LargeObjectMeta> src_meta, dst_meta;
  {
    PGB_ASSIGN_OR_RETURN(PgConn src, OpenSource(o));
    PGB_ASSIGN_OR_RETURN(PgConn dst, Connect(o.target, "target", o.application_name));
    PGB_ASSIGN_OR_RETURN(src_meta, ListMeta(src));
    PGB_ASSIGN_OR_RETURN(dst_meta, ListMeta(dst));
  }
  rep.source_objects = src_meta.size();
  rep.target_objects = dst_meta.size();
  std::vector<const LargeObjectMeta*> to_write;  // created or replaced
  std::vector<const LargeObjectMeta*> to_compare;
  std::vector<uint32_t> to_unlink;
  {
    size_t j = 0;
    for (const LargeObjectMeta& s : src_meta) {
      while (j < dst_meta.size() && dst_meta[j].oid < s.oid) {
        to_unlink.push_back(dst_meta[j].oid);
        note(dst_meta[j].oid, "not on source");
        ++j;
      }
      if (j >= dst_meta.size() || dst_meta[j].oid != s.oid) {
        to_write.push_back(&s);
        rep.missing++;
        note(s.oid, "missing on target");
        continue;
      }
      const LargeObjectMeta& d = dst_meta[j++];
      std::string why;
      if (!o.no_owner && s.owner != d.owner) {
        why = fmt::format("owner differs (source {}, target {})", s.owner, d.owner);
      } else if (s.acl != d.acl) {
        why = fmt::format("ACL differs (source {}, target {})", s.acl, d.acl);
      } else if (s.comment != d.comment) {
        why = "comment differs";
      }
      rep.compared++;
      if (why.empty()) {
        to_compare.push_back(&s);
      } else {
        to_write.push_back(&s);
        rep.differing++;
        note(s.oid, why);
      }
    }
    for (; j < dst_meta.size(); ++j) {
      to_unlink.push_back(dst_meta[j].oid);
      note(dst_meta[j].oid, "not on source");
    }
  }
  rep.extra = to_unlink.size();
  rep.list_ms = MsSince(t);

  // 2. Contents of the objects on both sides: md5 on each server, batches spread over workers.
  t = Clock::now();
  std::vector<std::vector<uint32_t>> digest_batches;
  for (size_t i = 0; i < to_compare.size(); i += kDigestBatch) {
    std::vector<uint32_t> b;
    for (size_t k = i; k < std::min(to_compare.size(), i + kDigestBatch); ++k) {
      b.push_back(to_compare[k]->oid);
    }
    digest_batches.push_back(std::move(b));
  }
  std::set<uint32_t> changed;
  PGB_RETURN_IF_ERROR(
      RunWorkers(o, digest_batches.size(), [&](size_t i, PgConn& src, PgConn& dst) -> Status {
        PGB_ASSIGN_OR_RETURN(auto a, Digests(src, digest_batches[i]));
        PGB_ASSIGN_OR_RETURN(auto b, Digests(dst, digest_batches[i]));
        for (uint32_t oid : digest_batches[i]) {
          auto x = a.find(oid);
          auto y = b.find(oid);
          if (x != a.end() && y != b.end() && x->second == y->second) continue;
          std::lock_guard<std::mutex> l(mu);
          changed.insert(oid);
        }
        return Status::Ok();
      }));
  for (const auto* m : to_compare) {
    if (!changed.count(m->oid)) continue;
    to_write.push_back(m);
    rep.differing++;
    note(m->oid, "content differs");
  }
  rep.digest_ms = MsSince(t);
  if (o.dry_run) return rep;

  // 3. Writes: unlinks in a few big statements, objects in batches of many per transaction.
  t = Clock::now();
  std::sort(to_write.begin(), to_write.end(),
            [](const auto* a, const auto* b) { return a->oid < b->oid; });
  std::vector<std::vector<const LargeObjectMeta*>> batches;
  const size_t per_batch = std::max<size_t>(1, o.batch_objects);
  for (size_t i = 0; i < to_write.size(); i += per_batch) {
    batches.emplace_back(to_write.begin() + i,
                         to_write.begin() + std::min(to_write.size(), i + per_batch));
  }
  const size_t unlink_batches = (to_unlink.size() + kUnlinkBatch - 1) / kUnlinkBatch;
  if (o.on_plan) o.on_plan(to_write.size() + to_unlink.size(), batches.size() + unlink_batches);
  int done = 0;
  std::mutex done_mu;
  PGB_RETURN_IF_ERROR(RunWorkers(
      o, unlink_batches + batches.size(), [&](size_t i, PgConn& src, PgConn& dst) -> Status {
        size_t objects = 0;
        if (i < unlink_batches) {
          std::vector<uint32_t> b(
              to_unlink.begin() + i * kUnlinkBatch,
              to_unlink.begin() + std::min(to_unlink.size(), (i + 1) * kUnlinkBatch));
          Status s = dst.ExecParams(fmt::format("SELECT pg_catalog.lo_unlink(o) FROM "
                                                "unnest($1::oid[]) o WHERE {}",
                                                kExists),
                                    {OidArray(b)})
                         .status();
          if (!s.ok()) return s.WithContext("unlinking large objects on target");
          objects = b.size();
        } else {
          const auto& b = batches[i - unlink_batches];
          BatchWriter w(o, src, dst);
          auto bytes = w.Write(b);
          if (!bytes.ok()) {
            (void)dst.Run("ROLLBACK");
            return bytes.status();
          }
          std::lock_guard<std::mutex> l(mu);
          rep.bytes_written += *bytes;
          objects = b.size();
        }
        std::lock_guard<std::mutex> l(done_mu);
        ++done;
        if (o.on_batch_done) o.on_batch_done(done, objects);
        return Status::Ok();
      }));
  rep.write_ms = MsSince(t);
  return rep;
}

}  // namespace pgbaton::tools::copy

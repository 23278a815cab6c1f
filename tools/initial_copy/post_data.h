// After the data: pg_dump's post-data entries built on the target in waves (indexes and unique
// or primary constraints across N connections, biggest table first; then index attaches; then
// foreign keys, triggers and the rest in dump order), and ANALYZE of the copied tables.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "tools/initial_copy/copy_options.h"
#include "tools/initial_copy/progress.h"
#include "tools/initial_copy/schema.h"

namespace pgbaton::tools::copy {

struct PostDataJob {
  const CopyOptions* options = nullptr;
  PostData post_data;
  std::map<QualifiedName, uint64_t> table_bytes;  // table -> size, for ordering wave 0
  // Entries already built in an earlier run (by index into post_data.entries).
  std::function<bool(size_t)> is_done;
  // Records an entry as built; called once per entry, serialized by the caller's lock below.
  std::function<Status(size_t)> mark_done;
  // True when an earlier run may have built entries it did not record: then "already exists"
  // from the target means the entry is built.
  bool resuming = false;
  Progress* progress = nullptr;
};

// Runs every entry not yet done. Each target session gets the dump's preamble and
// maintenance_work_mem. Errors: the first failing entry's, naming it.
Status RunPostData(const PostDataJob& job);

// Builds wave-0 entries (indexes, primary and unique constraints) of tables whose data is done
// while the data of other tables is still being copied, on `options.jobs` target sessions of its
// own. Submit() and Finish() are called from any thread.
class EarlyIndexBuilder {
 public:
  // `job` must outlive the builder; its is_done/mark_done are called from the builder's threads.
  explicit EarlyIndexBuilder(const PostDataJob* job);
  ~EarlyIndexBuilder();
  // Queues the entries on table schema.name (none already done or queued), then its ANALYZE
  // (which waits for the table's index builds, so it sees expression indexes too).
  void SubmitTable(const std::string& schema, const std::string& name);
  // Whether "schema.table" was analyzed here. Call after Finish().
  bool Analyzed(const std::string& table) const { return analyzed_.count(table) > 0; }
  // Waits for everything queued; returns the first error.
  Status Finish();

 private:
  void Worker(int id);
  const PostDataJob* job_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> queue_;
  std::set<size_t> queued_;
  std::vector<std::pair<std::string, std::string>> analyze_;  // queued as kAnalyze + index
  std::set<std::string> analyzed_;
  static constexpr size_t kAnalyze = size_t{1} << 40;
  bool closing_ = false;
  Status error_;
  std::vector<std::thread> threads_;
};

// ANALYZE of each "schema.table" in `tables` across options.jobs target connections.
Status AnalyzeTables(const CopyOptions& options,
                     const std::vector<std::pair<std::string, std::string>>& tables,
                     Progress* progress);

}  // namespace pgbaton::tools::copy

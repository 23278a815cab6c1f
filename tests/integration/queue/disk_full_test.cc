// A RocksDB queue on a small file system fills up: the writer stops with kDiskFull naming the
// directory, every append that returned OK is still readable, and nothing else is visible.
// The file system is an 8 MiB tmpfs (or, where tmpfs cannot be mounted, a loop-mounted ext4
// image); mounting needs root, which the tests have in CI. Without it the test fails (no skip).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <random>

#include "queue/work_queue.h"
#include "tests/support/process.h"
#include "tests/support/queue_records.h"

namespace pgbaton::queue {
namespace {

using namespace std::chrono_literals;
using pgbaton::testing::MakeTempDir;
using pgbaton::testing::RemoveTree;
using pgbaton::testing::RunCommand;

class SmallFileSystem {
 public:
  // Mounts an 8 MiB file system at a fresh directory; `error` says why when it cannot.
  SmallFileSystem() {
    root_ = MakeTempDir("pgbaton-diskfull");
    mount_point_ = root_ + "/mnt";
    RunCommand({"mkdir", "-p", mount_point_});
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=8m") == 0) {
      mounted_ = true;
      return;
    }
    error_ = std::string("tmpfs: ") + strerror(errno);
    std::string image = root_ + "/fs.img";
    auto r = RunCommand({"sh", "-c",
                         "dd if=/dev/zero of=" + image +
                             " bs=1M count=8 status=none && mkfs.ext4 -q -F " + image +
                             " && mount -o loop " + image + " " + mount_point_});
    if (r.exit_code == 0) {
      mounted_ = true;
      return;
    }
    error_ += "; loop-mounted ext4: " + r.output;
  }
  ~SmallFileSystem() {
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
    RemoveTree(root_);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return mount_point_; }

 private:
  std::string root_, mount_point_, error_;
  bool mounted_ = false;
};

TEST(QueueDiskFullTest, WriterStopsWithDiskFullAndTheQueueStaysReadable) {
  SmallFileSystem fs;
  // Never a skip: a test that cannot run must not pass. CI runs the tests as root.
  ASSERT_TRUE(fs.mounted()) << "cannot mount a small file system: " << fs.error()
                            << "\nhint: run this test as root (mounting a tmpfs or a loop device "
                               "needs CAP_SYS_ADMIN)";
  std::string dir = fs.path() + "/q";
  QueueOptions o;
  o.dir = dir;
  auto q = std::move(WorkQueue::Open(o)).value();
  std::mt19937_64 rng(7);
  std::string noise(64 << 10, '\0');
  uint64_t durable = 0;
  Status failure;
  for (uint64_t i = 1; i <= 1000; ++i) {  // 64 MiB: far more than fits
    for (char& c : noise) c = static_cast<char>(rng());
    RecordBatch b;
    testing::AddTxn(&b, static_cast<uint32_t>(i), i * 0x100, 0);
    b.chunks[0].changes = {testing::MakeInsert(1, static_cast<int64_t>(i), noise)};
    failure = q->Append(b);
    if (!failure.ok()) break;
    durable = i;
  }
  ASSERT_FALSE(failure.ok()) << "8 MiB held 64 MiB?";
  EXPECT_EQ(failure.code(), ErrorCode::kDiskFull) << failure.ToString();
  EXPECT_NE(failure.message().find(dir), std::string::npos) << failure.message();
  EXPECT_GT(durable, 10u);
  // Later appends keep failing the same way instead of pretending.
  RecordBatch more;
  testing::AddTxn(&more, 5000, 5000 * 0x100);
  Status again = q->Append(more);
  EXPECT_EQ(again.code(), ErrorCode::kDiskFull) << again.ToString();

  auto check = [&](WorkQueue* reader) {
    auto cursor = std::move(reader->ReadFrom(Lsn::Invalid())).value();
    uint64_t n = 0;
    while (true) {
      auto t = cursor->Next(0ms);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      if (!*t) break;
      ++n;
      EXPECT_EQ((*t)->commit().commit_lsn, Lsn(n * 0x100));
      ChangeChunk c;
      auto r = (*t)->NextChunk(&c);
      ASSERT_TRUE(r.ok() && *r) << r.status().ToString();
      EXPECT_EQ(c.changes.at(0).new_tuple->at(1).data.size(), noise.size());
    }
    // Everything reported durable is there; at most the failed append may also be (RocksDB may
    // have written it before the sync failed) but never more.
    EXPECT_GE(n, durable);
    EXPECT_LE(n, durable + 1);
  };
  check(q.get());
  QueueOptions ro = o;
  ro.read_only = true;
  auto reader = WorkQueue::Open(ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  check(reader->get());
}

}  // namespace
}  // namespace pgbaton::queue

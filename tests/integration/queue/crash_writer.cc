// queue_crash_writer: the child process of the queue crash tests. Appends the crash workload
// forever (until killed) and, only after each Append returned OK, writes the commit LSNs it
// made durable to the report file, one per line.
//   queue_crash_writer --rocksdb DIR REPORT
//   queue_crash_writer --kafka BROKERS TOPIC REPORT
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tests/integration/queue/crash_workload.h"

using namespace pgbaton;
using namespace pgbaton::queue;

int main(int argc, char** argv) {
  QueueOptions o;
  std::string report;
  if (argc == 4 && std::strcmp(argv[1], "--rocksdb") == 0) {
    o.dir = argv[2];
    report = argv[3];
  } else if (argc == 5 && std::strcmp(argv[1], "--kafka") == 0) {
    o.kafka_brokers = argv[2];
    o.kafka_topic = argv[3];
    o.kafka_timeout_ms = 60000;
    report = argv[4];
  } else {
    std::fprintf(stderr,
                 "usage: queue_crash_writer --rocksdb DIR REPORT | --kafka BROKERS TOPIC REPORT\n");
    return 2;
  }
  auto opened = WorkQueue::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto q = std::move(opened).value();
  Status s = q->DiscardUncommitted();
  auto last = q->LastCommitLsn();
  if (!s.ok() || !last.ok()) {
    std::fprintf(stderr, "start: %s %s\n", s.ToString().c_str(), last.status().ToString().c_str());
    return 1;
  }
  int fd = open(report.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 1;
  uint64_t k = last->IsValid() ? crash::IndexOf(*last) + 1 : 1;
  while (true) {
    // 1..3 transactions per append, like a decoder batching what arrived meanwhile.
    RecordBatch b;
    std::vector<uint64_t> committed;
    int txns = 1 + static_cast<int>(k % 3);
    for (int t = 0; t < txns; ++t, ++k) {
      if (crash::SpansAppends(k)) {
        RecordBatch first;
        first.chunks.push_back(crash::ChunkOf(k, 0));
        s = q->Append(first);
        if (!s.ok()) break;
        for (uint32_t seq = 1; seq < crash::ChunksOf(k); ++seq)
          b.chunks.push_back(crash::ChunkOf(k, seq));
      } else {
        for (uint32_t seq = 0; seq < crash::ChunksOf(k); ++seq)
          b.chunks.push_back(crash::ChunkOf(k, seq));
      }
      b.commits.push_back(crash::CommitOf(k));
      committed.push_back(k);
    }
    if (s.ok()) s = q->Append(b);
    if (!s.ok()) {
      std::fprintf(stderr, "append: %s\n", s.ToString().c_str());
      return 1;
    }
    std::string lines;
    for (uint64_t c : committed) lines += crash::LsnOf(c).ToString() + "\n";
    if (write(fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) return 1;
  }
}

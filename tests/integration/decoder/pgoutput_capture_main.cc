// pgoutput_capture MAJOR OUT_DIR: starts a fresh server of MAJOR, runs the golden workload and
// writes OUT_DIR/stream.bin (and OUT_DIR/twophase.bin on 15+). Used to (re)make
// tests/data/pgoutput/<major>/; not run by CI.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/integration/decoder/capture_workload.h"
#include "tests/support/process.h"

int main(int argc, char** argv) {
  using namespace pgbaton::testing;
  if (argc != 3) {
    std::fprintf(stderr, "usage: pgoutput_capture MAJOR OUT_DIR\n");
    return 2;
  }
  auto server = PgServer::Start(GoldenServerOptions(std::atoi(argv[1])));
  if (!server.ok()) {
    std::fprintf(stderr, "error: %s\n", server.status().ToString().c_str());
    return 1;
  }
  auto cap = CaptureGoldenWorkload(**server);
  if (!cap.ok()) {
    std::fprintf(stderr, "error: %s\n", cap.status().ToString().c_str());
    return 1;
  }
  std::string dir = argv[2];
  WriteFile(dir + "/stream.bin", cap->stream);
  if (!cap->twophase.empty()) WriteFile(dir + "/twophase.bin", cap->twophase);
  std::printf("wrote %zu + %zu bytes to %s\n", cap->stream.size(), cap->twophase.size(),
              dir.c_str());
  return 0;
}

#include "tools/preflight/preflight_command.h"

namespace pgbaton::tools {
namespace {
class PreflightCommand : public Command {
 public:
  explicit PreflightCommand(GlobalOptions* g) : global_(g) {}
  CLI::App* Register(CLI::App* app) override {
    return app->add_subcommand("preflight", "check both clusters and list every blocker");
  }
  Status Run() override { return Status::Ok(); }

 private:
  GlobalOptions* global_;
};
}  // namespace
std::unique_ptr<Command> MakePreflightCommand(GlobalOptions* g) {
  return std::make_unique<PreflightCommand>(g);
}
}  // namespace pgbaton::tools

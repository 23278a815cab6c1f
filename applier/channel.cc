#include "applier/channel.h"

#include <utility>

namespace pgbaton::applier {

void SharedState::Fail(Status s) {
  std::lock_guard<std::mutex> l(mu);
  if (!failed) {
    failed = true;
    error = std::move(s);
  }
  cv.notify_all();
}

bool SharedState::Failed() {
  std::lock_guard<std::mutex> l(mu);
  return failed;
}

bool SharedState::WaitCommitted(uint64_t group) {
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return failed || committed >= group; });
  return !failed;
}

Item Item::Work(uint64_t group, uint64_t wait_for, std::shared_ptr<TxnWork> work) {
  Item it;
  it.kind = Kind::kWork;
  it.group = group;
  it.wait_for = wait_for;
  it.bytes = work->bytes;
  it.work = std::move(work);
  return it;
}

Item Item::Call(uint64_t group, uint64_t wait_for, const GroupCommit& commit,
                std::function<Status(ApplySession*)> call) {
  Item it;
  it.kind = Kind::kCall;
  it.group = group;
  it.wait_for = wait_for;
  it.commit = commit;
  it.call = std::move(call);
  return it;
}

Item Item::Commit(uint64_t group, const GroupCommit& commit) {
  Item it;
  it.kind = Kind::kCommit;
  it.group = group;
  it.commit = commit;
  return it;
}

bool Channel::Push(Item item) {
  std::unique_lock<std::mutex> l(shared_->mu);
  shared_->cv.wait(l, [&] { return shared_->failed || items_.empty() || bytes_ < capacity_; });
  if (shared_->failed) return false;
  bytes_ += item.bytes;
  items_.push_back(std::move(item));
  // Only an empty channel has a session waiting on it: wake it then, not on every item.
  if (items_.size() == 1) shared_->cv.notify_all();
  return true;
}

bool Channel::Pop(Item* out) {
  std::unique_lock<std::mutex> l(shared_->mu);
  shared_->cv.wait(l, [&] { return shared_->failed || closed_ || !items_.empty(); });
  if (shared_->failed || items_.empty()) return false;
  *out = std::move(items_.front());
  items_.pop_front();
  // Only a full channel has the coordinator waiting on it.
  bool was_full = bytes_ >= capacity_;
  bytes_ -= out->bytes;
  if (was_full) shared_->cv.notify_all();
  return true;
}

void Channel::Close() {
  std::lock_guard<std::mutex> l(shared_->mu);
  closed_ = true;
  shared_->cv.notify_all();
}

}  // namespace pgbaton::applier

#include "server/transport/send_batch.hpp"

#include <cerrno>

#include <liburing.h>

namespace pushwire::server {

struct send_batch::ring {
  io_uring r{};
};

send_batch::send_batch() = default;

send_batch::~send_batch() {
  if (ring_) io_uring_queue_exit(&ring_->r);
}

bool send_batch::enable(unsigned entries) {
  if (ring_ || entries == 0) return enabled();
  auto r = std::make_unique<ring>();
  // One thread submits, and nothing needs its completions pushed at it (every send completes inside
  // the submit): no interrupting the thread for task work. Without those flags on an older kernel.
  if (io_uring_queue_init(entries, &r->r, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN) != 0 &&
      io_uring_queue_init(entries, &r->r, 0) != 0)
    return false;
  ring_ = std::move(r);
  entries_ = entries;
  owners_.reserve(entries);
  running_.reserve(entries);
  results_.reserve(entries);
  return true;
}

bool send_batch::add(int fd, const msghdr* mh, std::shared_ptr<batch_sender> owner) {
  if (!ring_ || full()) return false;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_->r);
  if (!sqe) return false;
  io_uring_prep_sendmsg(sqe, fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, owners_.size());
  owners_.push_back(std::move(owner));
  return true;
}

void send_batch::run() {
  if (owners_.empty()) return;
  // Taken out first: an owner's result may start writes that batch again later.
  running_.swap(owners_);
  results_.assign(running_.size(), -EAGAIN);
  auto n = static_cast<unsigned>(running_.size());
  int r;
  do r = io_uring_submit_and_wait(&ring_->r, n);
  while (r == -EINTR);   // (the kernel returns -EINTR only when it took nothing)
  auto submitted = static_cast<std::size_t>(r > 0 ? r : 0);
  // Entries go in order: [0, submitted) were sent or refused by the kernel, the rest never left (and
  // keep -EAGAIN). Each taken one is complete, being non-blocking; its result is read here.
  seen_.assign(submitted, 0);
  for (std::size_t got = 0; got < submitted;) {
    io_uring_cqe* cqe = nullptr;
    int w = io_uring_wait_cqe(&ring_->r, &cqe);
    if (w == -EINTR) continue;
    if (w != 0 || !cqe) break;
    auto i = static_cast<std::size_t>(io_uring_cqe_get_data64(cqe));
    if (i < submitted) {
      results_[i] = cqe->res;
      seen_[i] = 1;
    }
    io_uring_cqe_seen(&ring_->r, cqe);
    ++got;
  }
  // A send taken whose result never came may or may not have gone out: its connection cannot go on
  // (a resend could repeat bytes), so it ends with an error and its client resumes.
  for (std::size_t i = 0; i < submitted; ++i)
    if (!seen_[i]) results_[i] = -EIO;
  if (submitted < running_.size()) {
    // The ring refused part of a batch: those entries must never be submitted later, with their
    // buffers gone. Connections send themselves from now on.
    io_uring_queue_exit(&ring_->r);
    ring_.reset();
  }
  for (std::size_t i = 0; i < running_.size(); ++i) running_[i]->batch_sent(results_[i]);
  running_.clear();
}

}  // namespace pushwire::server

// One flush pass's sends handed to the kernel together through io_uring (issue 19 item 2), instead
// of one sendmsg system call per connection. Measured on its own (bench/uring/send_batch.c: 1,000
// loopback connections, 100 bytes each, a reader reading at once), a pass costs the sending thread
// 1.7-2.1 us per send as one batch against 2.5-3.8 us with sendmsg, and the whole process ~2.5 us
// less per send; smaller batches save less (64 per submit: ~15 %). Each entry is the same
// non-blocking sendmsg (MSG_DONTWAIT) the connection would make: the kernel does it inline during
// the submit, never parks it, so every result is back when run() returns and the connection goes on
// exactly as after its own call. In the server it is off by default (--io-uring; the measurements
// are in docs/performance.md: cheaper per delivery at a fixed rate, closed-loop results not yet
// settled). Without io_uring (--io-uring off, a kernel or sandbox that refuses it) enabled() is
// false and connections send themselves. liburing (Debian's liburing-dev) sets up
// the ring and fills its entries; the sends are the kernel's.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace pushwire::server {

// What gets a batched send's result: bytes sent, or -errno.
class batch_sender {
 public:
  virtual void batch_sent(long result) = 0;

 protected:
  ~batch_sender() = default;
};

class send_batch {
 public:
  send_batch();
  ~send_batch();
  send_batch(const send_batch&) = delete;
  send_batch& operator=(const send_batch&) = delete;

  // Sets up the ring (`entries` sends per batch at most), on the thread that will submit to it;
  // false (and stays disabled) when refused.
  bool enable(unsigned entries);
  bool enabled() const { return ring_ != nullptr; }
  // Only an enabled batch fills: a flush slice that is not batching is bounded by its time alone.
  bool full() const { return ring_ && owners_.size() >= entries_; }
  // Queues a sendmsg of `mh` on `fd`, for `owner` (kept alive until its result is handed over).
  // `mh` and what it points to must stay valid until run(). False when disabled or full.
  bool add(int fd, const msghdr* mh, std::shared_ptr<batch_sender> owner);
  // Submits what was queued and hands each owner its result, in the order they were added. A send
  // the kernel could not be given gets -EAGAIN: its connection waits for writability and sends
  // itself.
  void run();

 private:
  struct ring;
  std::unique_ptr<ring> ring_;
  unsigned entries_ = 0;
  std::vector<std::shared_ptr<batch_sender>> owners_, running_;
  std::vector<long> results_;
  std::vector<unsigned char> seen_;
};

}  // namespace pushwire::server

// One gather write of shared buffers with a non-blocking sendmsg, resumable after a partial write.
// The fan-out path uses it instead of an Asio composed write: a write the kernel takes whole (the
// common case) then costs one system call and no operation object, no posted completion; only the
// rest of a partial write waits for writability (the caller's socket.async_wait).
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <cerrno>
#include <vector>

namespace pushwire::server {

constexpr std::size_t max_gather_buffers = 128;   // iovecs per call (IOV_MAX is 1024)

// Sends what is left of `bufs` after the first `written` bytes, adding what went out to `written`.
// True when everything is sent; false with `ec` clear when the socket would block, false with `ec`
// set on a real error.
// Fills `iov` (room for max_gather_buffers) with what is left of `bufs` after the first `written`
// bytes; returns how many it filled, and the total size of `bufs` in `total`.
inline std::size_t remaining_iovecs(const std::vector<boost::asio::const_buffer>& bufs, std::size_t written, iovec* iov,
                                    std::size_t& total) {
  std::size_t n = 0, skip = written;
  total = 0;
  for (auto& b : bufs) {
    total += b.size();
    if (skip >= b.size()) { skip -= b.size(); continue; }
    if (n == max_gather_buffers) continue;   // the rest goes in the next call
    iov[n++] = iovec{const_cast<char*>(static_cast<const char*>(b.data())) + skip, b.size() - skip};
    skip = 0;
  }
  return n;
}

inline bool gather_send(int fd, const std::vector<boost::asio::const_buffer>& bufs, std::size_t& written,
                        boost::system::error_code& ec) {
  iovec iov[max_gather_buffers];
  std::size_t total = 0;
  std::size_t n = remaining_iovecs(bufs, written, iov, total);
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = n;
  for (;;) {
    ssize_t r = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) {
      written += static_cast<std::size_t>(r);
      return written == total;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) ec.assign(errno, boost::system::system_category());
    return false;
  }
}

}  // namespace pushwire::server

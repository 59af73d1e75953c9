// Issue 19 item 2, the io_uring option measured on its own: what one fan-out pass costs the sender
// when it sends 100 bytes to each of N loopback TCP connections with one sendmsg(2) per connection
// (what the server does) against the same sends submitted to io_uring as one batch (one
// io_uring_enter for the whole pass). A reader thread reads every socket as soon as it is
// readable, as the benchmark's subscribers do. Prints the sender thread's CPU per send for each, and
// the whole process's (the reader, and io_uring's worker threads if it punted any send to them).
//
//   cc -O2 -o send_batch bench/uring/send_batch.c -luring -lpthread && ./send_batch 1000 200 [batch]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int n_conns, rounds, batch;
static int *senders, *receivers;
static volatile int stop_reader;

static double cpu_us(int who) {
  struct rusage r;
  getrusage(who, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

static void* reader(void* arg) {
  (void)arg;
  int ep = epoll_create1(0);
  for (int i = 0; i < n_conns; ++i) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = receivers[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, receivers[i], &ev);
  }
  struct epoll_event evs[256];
  char buf[65536];
  while (!stop_reader) {
    int k = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < k; ++i) (void)!read(evs[i].data.fd, buf, sizeof buf);
  }
  return NULL;
}

static void connect_all(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(l, (struct sockaddr*)&a, sizeof a);
  listen(l, 4096);
  socklen_t len = sizeof a;
  getsockname(l, (struct sockaddr*)&a, &len);
  for (int i = 0; i < n_conns; ++i) {
    senders[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(senders[i], (struct sockaddr*)&a, sizeof a) != 0) { perror("connect"); exit(1); }
    receivers[i] = accept(l, NULL, NULL);
    int one = 1;
    setsockopt(senders[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  close(l);
}

int main(int argc, char** argv) {
  n_conns = argc > 1 ? atoi(argv[1]) : 1000;
  rounds = argc > 2 ? atoi(argv[2]) : 200;
  batch = argc > 3 ? atoi(argv[3]) : 4096;   // sends per io_uring_enter at most
  senders = calloc(n_conns, sizeof(int));
  receivers = calloc(n_conns, sizeof(int));
  connect_all();
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  char msg[100];
  memset(msg, 'x', sizeof msg);
  struct io_uring ring;
  if (io_uring_queue_init(4096, &ring, 0) != 0) { perror("io_uring_queue_init"); return 1; }
  struct timespec pause = {0, 2000000};   // between passes: the reader catches up, as at a fixed rate
  for (int mode = 0; mode < 4; ++mode) {   // sendmsg, io_uring, then both again (warm caches)
    double cpu = 0, p0 = cpu_us(RUSAGE_SELF);
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (int r = 0; r < rounds; ++r) {
      double c0 = cpu_us(RUSAGE_THREAD);
      if (mode % 2 == 0) {
        for (int i = 0; i < n_conns; ++i) {
          struct iovec v = {msg, sizeof msg};
          struct msghdr h = {.msg_iov = &v, .msg_iovlen = 1};
          if (sendmsg(senders[i], &h, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof msg) { perror("sendmsg"); return 1; }
        }
      } else {
        int left = n_conns, next = 0;
        while (left > 0) {
          for (int queued = 0; next < n_conns && queued < batch; ++queued) {
            struct io_uring_sqe* s = io_uring_get_sqe(&ring);
            if (!s) break;
            io_uring_prep_send(s, senders[next++], msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL);
          }
          io_uring_submit_and_wait(&ring, (unsigned)(batch < left ? batch : left));
          struct io_uring_cqe* cqe;
          unsigned head, seen = 0;
          io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != (int)sizeof msg) { fprintf(stderr, "send: %d\n", cqe->res); return 1; }
            ++seen;
          }
          io_uring_cq_advance(&ring, seen);
          left -= (int)seen;
        }
      }
      cpu += cpu_us(RUSAGE_THREAD) - c0;
      nanosleep(&pause, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    double sends = (double)n_conns * rounds;
    printf("%-8s %d connections x %d passes: sender thread %.2f us CPU per send; whole process (reader and any io_uring workers) %.2f us; wall %.2f s\n",
           mode % 2 ? "io_uring" : "sendmsg", n_conns, rounds, cpu / sends, (cpu_us(RUSAGE_SELF) - p0) / sends,
           (w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9);
  }
  stop_reader = 1;
  pthread_join(t, NULL);
  return 0;
}

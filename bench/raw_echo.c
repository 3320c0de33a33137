/* Raw libevent echo throughput: the floor the Lua benchmarks are measured against.
 *
 *   gcc -O2 -o raw_echo bench/raw_echo.c $(pkg-config --cflags --libs libevent)
 *   ./raw_echo bev BYTES     bufferevents, the twin of `luaevent_bench.lua echo_bev`
 *   ./raw_echo ev BYTES      events + evbuffer_read/evbuffer_write, the twin of `echo_evbuf`
 *
 * One process, one event base, a loopback TCP pair: the client sends BYTES in 64 KiB chunks, the
 * server echoes them back, the client counts them. Same structure, chunk size and watermarks as
 * the Lua scripts. Prints the same lines as bench/common.lua:
 *   loaded libevent <version>
 *   result <bench> cpu=<s> wall=<s> work=<bytes>
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define LOW (2 * CHUNK)
#define HIGH (4 * CHUNK)

static char chunk[CHUNK];
static size_t total, queued, received;
static struct event_base *base;

static void die(const char *what) {
  fprintf(stderr, "raw_echo: FAILED: %s (%s)\n", what, strerror(errno));
  exit(1);
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void tcp_pair(int fds[2]) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(listener, 1) < 0) die("listen");
  if (getsockname(listener, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  if (fds[0] < 0) die("socket");
  if (connect(fds[0], (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  fds[1] = accept(listener, NULL, NULL);
  if (fds[1] < 0) die("accept");
  close(listener);
  for (int i = 0; i < 2; i++) {
    if (evutil_make_socket_nonblocking(fds[i]) < 0) die("nonblocking");
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

/* ---- bufferevents ---- */
static struct bufferevent *server_bev, *client_bev;

static void server_read(struct bufferevent *bev, void *arg) {
  (void)arg;
  evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void client_refill(struct bufferevent *bev, void *arg) {
  struct evbuffer *out = bufferevent_get_output(bev);
  (void)arg;
  while (queued < total && evbuffer_get_length(out) < HIGH) {
    size_t want = total - queued < CHUNK ? total - queued : CHUNK;
    evbuffer_add(out, chunk, want);
    queued += want;
  }
}

static void client_read(struct bufferevent *bev, void *arg) {
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  (void)arg;
  received += len;
  evbuffer_drain(in, len);
  if (received >= total) {
    bufferevent_free(client_bev);
    bufferevent_free(server_bev);
    event_base_loopexit(base, NULL);
  }
}

static void on_error(struct bufferevent *bev, short what, void *arg) {
  (void)bev; (void)arg;
  fprintf(stderr, "raw_echo: FAILED: bufferevent error 0x%x\n", what);
  exit(1);
}

static void run_bev(int fds[2]) {
  server_bev = bufferevent_socket_new(base, fds[1], 0);
  client_bev = bufferevent_socket_new(base, fds[0], 0);
  if (!server_bev || !client_bev) die("bufferevent_socket_new");
  bufferevent_setcb(server_bev, server_read, NULL, on_error, NULL);
  bufferevent_setcb(client_bev, client_read, client_refill, on_error, NULL);
  bufferevent_setwatermark(client_bev, EV_WRITE, LOW, HIGH);
  bufferevent_enable(server_bev, EV_READ);
  bufferevent_enable(client_bev, EV_READ);
  client_refill(client_bev, NULL);
  event_base_dispatch(base);
}

/* ---- events + evbuffer_read / evbuffer_write ---- */
static struct evbuffer *sbuf, *cout, *cin;
static struct event *ev_server, *ev_writer, *ev_reader;
static int fd_client, fd_server;

static void server_cb(evutil_socket_t fd, short what, void *arg) {
  (void)arg;
  if (what & EV_READ) {
    int n = evbuffer_read(sbuf, fd, CHUNK);
    if (n == 0) die("client hung up");
    if (evbuffer_get_length(sbuf) == 0) return;
    evbuffer_write(sbuf, fd);
    if (evbuffer_get_length(sbuf) > 0) { /* switch to EV_WRITE, as the Lua server does */
      event_del(ev_server);
      event_assign(ev_server, base, fd, EV_WRITE | EV_PERSIST, server_cb, NULL);
      event_add(ev_server, NULL);
    }
  } else if (what & EV_WRITE) {
    if (evbuffer_write(sbuf, fd) < 0) die("server write");
    if (evbuffer_get_length(sbuf) == 0) {
      event_del(ev_server);
      event_assign(ev_server, base, fd, EV_READ | EV_PERSIST, server_cb, NULL);
      event_add(ev_server, NULL);
    }
  }
}

static void writer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what; (void)arg;
  while (queued < total && evbuffer_get_length(cout) < 2 * CHUNK) {
    size_t want = total - queued < CHUNK ? total - queued : CHUNK;
    evbuffer_add(cout, chunk, want);
    queued += want;
  }
  if (evbuffer_write(cout, fd) < 0) die("client write");
  if (queued >= total && evbuffer_get_length(cout) == 0) event_del(ev_writer);
}

static void reader_cb(evutil_socket_t fd, short what, void *arg) {
  size_t len;
  (void)what; (void)arg;
  if (evbuffer_read(cin, fd, CHUNK) == 0) die("server hung up");
  len = evbuffer_get_length(cin);
  received += len;
  evbuffer_drain(cin, len);
  if (received >= total) {
    event_del(ev_server);
    event_del(ev_writer);
    event_del(ev_reader);
  }
}

static void run_ev(int fds[2]) {
  fd_client = fds[0];
  fd_server = fds[1];
  sbuf = evbuffer_new();
  cout = evbuffer_new();
  cin = evbuffer_new();
  ev_server = event_new(base, fd_server, EV_READ | EV_PERSIST, server_cb, NULL);
  ev_writer = event_new(base, fd_client, EV_WRITE | EV_PERSIST, writer_cb, NULL);
  ev_reader = event_new(base, fd_client, EV_READ | EV_PERSIST, reader_cb, NULL);
  event_add(ev_server, NULL);
  event_add(ev_writer, NULL);
  event_add(ev_reader, NULL);
  event_base_dispatch(base);
}

int main(int argc, char **argv) {
  int fds[2];
  double t0, c0, t, c;
  const char *mode = argc > 1 ? argv[1] : "bev";
  total = argc > 2 ? strtoull(argv[2], NULL, 10) : 64u << 20;
  for (size_t i = 0; i < CHUNK; i++) chunk[i] = (char)i;
  base = event_base_new();
  if (!base) die("event_base_new");
  printf("loaded libevent %s (%s)\n", event_get_version(), event_base_get_method(base));
  tcp_pair(fds);
  t0 = wall();
  c0 = cpu();
  if (strcmp(mode, "bev") == 0) run_bev(fds);
  else if (strcmp(mode, "ev") == 0) run_ev(fds);
  else { fprintf(stderr, "usage: raw_echo bev|ev [BYTES]\n"); return 2; }
  t = wall() - t0;
  c = cpu() - c0;
  if (received != total) {
    fprintf(stderr, "raw_echo: FAILED: %zu bytes back, expected %zu\n", received, total);
    return 1;
  }
  printf("result echo_%s cpu=%.9g wall=%.9g work=%zu\n", strcmp(mode, "bev") == 0 ? "bev" : "evbuf", c, t, total);
  return 0;
}

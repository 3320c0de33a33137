/* The one client of the TLS server benchmarks, on libevent_openssl, so that the three servers
 * (ours, LuaSec over LuaSocket, raw libevent_openssl) face the same load from a client that
 * costs as little as a client can. A server benchmark starts it with popen once it listens.
 *
 *   gcc -O2 -o tls_client bench/tls_client.c $(pkg-config --cflags --libs libevent_openssl openssl)
 *   ./tls_client echo PORT C BYTES    C TLS connections at once; once every handshake is done,
 *                                     each sends BYTES/C bytes in 16 KiB writes, keeping at most
 *                                     WINDOW bytes unanswered, and reads them all back, then closes
 *   ./tls_client handshake PORT N     N short TLS connections, CONCURRENCY at a time: connect,
 *                                     handshake, close (a close notice, then the socket) as soon
 *                                     as the handshake is done on this side
 *
 * TLS 1.3 only, TLS_AES_128_GCM_SHA256 only, no session resumption (every handshake is a full
 * one), no verification of the server (the servers' cost is what is measured). Prints
 * "client work=<count> wall=<seconds>" (echo: bytes echoed, from the moment all C are up;
 * handshake: connections, from the first connect). Only 127.0.0.1. Exits 1 with
 * "tls_client: FAILED: ..." on any error; SIGALRM ends it after TIME_CAP seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONCURRENCY 8
#define CHUNK 16384
#define WINDOW (256 * 1024)
#define TIME_CAP 300

static struct event_base *base;
static SSL_CTX *ctx;
static struct sockaddr_in server;
static char chunk[CHUNK];
static long target, started, finished, connected;
static long per_conn; /* echo: bytes each connection sends */
static int echo_mode, all_up;
static struct conn **pending;
static double t0;

struct conn {
  struct bufferevent *bev;
  long sent, got;
};

static void die(const char *what) {
  unsigned long e = ERR_get_error();
  fprintf(stderr, "tls_client: FAILED: %s (%s%s%s)\n", what, strerror(errno), e ? "; " : "",
          e ? ERR_reason_error_string(e) : "");
  exit(1);
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start_one(void);

/* Tops the connection up to WINDOW unanswered bytes. */
static void fill(struct conn *c) {
  while (c->sent < per_conn && c->sent - c->got < WINDOW) {
    long n = per_conn - c->sent < CHUNK ? per_conn - c->sent : CHUNK;
    if (bufferevent_write(c->bev, chunk, n) < 0) die("bufferevent_write");
    c->sent += n;
  }
}

static void finish(struct conn *c) {
  bufferevent_free(c->bev);
  free(c);
  finished++;
}

static void on_read(struct bufferevent *bev, void *arg) {
  struct conn *c = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  long want = per_conn;
  c->got += len;
  evbuffer_drain(in, len);
  if (c->got > want) { errno = 0; die("more bytes back than sent"); }
  if (c->got < want) {
    fill(c);
    return;
  }
  finish(c);
  if (finished == target) event_base_loopexit(base, NULL);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  struct conn *c = arg;
  (void)bev;
  if (what & BEV_EVENT_CONNECTED) {
    connected++;
    if (!echo_mode) {
      /* handshake done: close at once (a close notice, then the socket) */
      finish(c);
      if (finished == target) event_base_loopexit(base, NULL);
      else if (started < target) start_one();
      return;
    }
    if (connected == target) {
      all_up = 1;
      t0 = wall();
      for (long i = 0; i < target; i++) fill(pending[i]);
    }
    return;
  }
  errno = EVUTIL_SOCKET_ERROR();
  fprintf(stderr, "tls_client: FAILED: connection event 0x%x after %ld finished, %ld connected (%s; %s)\n",
          what, finished, connected, strerror(errno),
          ERR_reason_error_string(bufferevent_get_openssl_error(c->bev)));
  exit(1);
}

static void start_one(void) {
  struct conn *c = calloc(1, sizeof *c);
  SSL *ssl;
  int one = 1, fd;
  if (!c) die("calloc");
  /* TCP_NODELAY before the handshake: its flights are small writes that Nagle would hold */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt");
  if (evutil_make_socket_nonblocking(fd) < 0) die("nonblocking");
  ssl = SSL_new(ctx);
  if (!ssl) die("SSL_new");
  c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
  if (!c->bev) die("bufferevent_openssl_socket_new");
  bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&server, sizeof server) < 0) die("connect");
  if (pending) pending[started] = c;
  started++;
}

int main(int argc, char **argv) {
  double t;
  if (argc < 4 || (strcmp(argv[1], "echo") == 0 && argc < 5)) {
    fprintf(stderr, "usage: tls_client echo PORT C BYTES | handshake PORT N\n");
    return 2;
  }
  alarm(TIME_CAP);
  signal(SIGPIPE, SIG_IGN); /* a peer gone while we write is an error event, not death */
  memset(&server, 0, sizeof server);
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons((unsigned short)atoi(argv[2]));
  target = atol(argv[3]);
  if (target <= 0) { errno = EINVAL; die("count"); }
  for (int i = 0; i < CHUNK; i++) chunk[i] = (char)('a' + i % 26);

  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) die("ciphersuites");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

  base = event_base_new();
  if (!base) die("event_base_new");
  if (strcmp(argv[1], "handshake") == 0) {
    t0 = wall();
    for (long i = 0; i < CONCURRENCY && i < target; i++) start_one();
  } else if (strcmp(argv[1], "echo") == 0) {
    echo_mode = 1;
    per_conn = atol(argv[4]) / target;
    if (per_conn <= 0) { errno = EINVAL; die("bytes"); }
    pending = calloc(target, sizeof *pending);
    if (!pending) die("calloc");
    for (long i = 0; i < target; i++) start_one();
  } else {
    fprintf(stderr, "tls_client: unknown mode %s\n", argv[1]);
    return 2;
  }
  event_base_dispatch(base);
  t = wall() - t0;
  if (finished != target) {
    fprintf(stderr, "tls_client: FAILED: %ld of %ld finished\n", finished, target);
    return 1;
  }
  printf("client work=%ld wall=%.9g\n", echo_mode ? per_conn * target : target, t);
  return 0;
}

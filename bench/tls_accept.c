/* Raw libevent_openssl TLS echo server (evconnlistener + bufferevent_openssl_socket_new): the
 * floor the Lua TLS servers are measured against. Twin of the TLS servers in bench/tls_bench.lua
 * (ours on core.listener with options.tls; LuaSec over LuaSocket driven by luaevent.core).
 *
 *   gcc -O2 -o tls_accept bench/tls_accept.c $(pkg-config --cflags --libs libevent_openssl openssl)
 *   BENCH_TLS_CLIENT=tls_client BENCH_CERTS=dir ./tls_accept tls_echo_1 BYTES     1 connection
 *   BENCH_TLS_CLIENT=tls_client BENCH_CERTS=dir ./tls_accept tls_echo_100 BYTES   100 connections
 *   BENCH_TLS_CLIENT=tls_client BENCH_CERTS=dir ./tls_accept tls_handshake N      N short connections
 *
 * Listens on 127.0.0.1 (a free port) with the certificate dir/server.pem and key dir/server.key,
 * TLS 1.3 and TLS_AES_128_GCM_SHA256 only; starts the client (bench/tls_client.c) with popen;
 * echoes every byte back; frees a connection at its end; stops once as many connections as
 * the client makes have ended. The echo benchmarks time from the last connection's completed
 * handshake (the echo alone). Prints the same lines as bench/common.lua: the server's CPU time,
 * the client's wall time.
 *
 * TLS_ACCEPT_FILTER=1 (a diagnosis, not part of the table): the TLS layer is
 * bufferevent_openssl_filter_new over a socket bufferevent, the way our module builds STARTTLS
 * connections (see src/tls_layer.rs; it built every TLS connection so before), instead of
 * bufferevent_openssl_socket_new; doc/performance.md compares the two.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 1024
#define TIME_CAP 300

static struct event_base *base;
static SSL_CTX *ctx;
static long expected, handshakes, closed;
static int from_last_handshake;
static int use_filter; /* TLS_ACCEPT_FILTER=1: a filter over a socket bufferevent, as our STARTTLS does */
static double c0;

static void die(const char *what) {
  unsigned long e = ERR_get_error();
  fprintf(stderr, "tls_accept: FAILED: %s (%s%s%s)\n", what, strerror(errno), e ? "; " : "",
          e ? ERR_reason_error_string(e) : "");
  exit(1);
}

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_read(struct bufferevent *bev, void *arg) {
  (void)arg;
  evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  (void)arg;
  if (what & BEV_EVENT_CONNECTED) {
    if (++handshakes == expected && from_last_handshake) c0 = cpu();
    return;
  }
  bufferevent_free(bev);
  if (++closed == expected) event_base_loopexit(base, NULL);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg) {
  SSL *ssl = SSL_new(ctx);
  struct bufferevent *bev;
  (void)listener; (void)addr; (void)len; (void)arg;
  if (!ssl) die("SSL_new");
  if (use_filter) {
    struct bufferevent *under = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!under) die("bufferevent_socket_new");
    bev = bufferevent_openssl_filter_new(base, under, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  } else {
    bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!bev) die("bufferevent_openssl_socket_new");
  bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
  bufferevent_enable(bev, EV_READ);
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  socklen_t addrlen = sizeof addr;
  struct evconnlistener *listener;
  struct timeval cap = { TIME_CAP, 0 };
  const char *client = getenv("BENCH_TLS_CLIENT");
  const char *certs = getenv("BENCH_CERTS");
  char cmd[4096], path[4096], line[256];
  double c, wall = -1;
  long work = -1, size;
  FILE *p;
  if (argc < 3 || !client || !certs) {
    fprintf(stderr, "usage: BENCH_TLS_CLIENT=<tls_client> BENCH_CERTS=<dir> tls_accept tls_echo_1|tls_echo_100|tls_handshake SIZE\n");
    return 2;
  }
  size = atol(argv[2]);
  use_filter = getenv("TLS_ACCEPT_FILTER") && strcmp(getenv("TLS_ACCEPT_FILTER"), "1") == 0;
  signal(SIGPIPE, SIG_IGN); /* a peer gone while we write is an error event, not death */
  ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) die("ciphersuites");
  /* as ours does: a peer gone without a close notice is an end of file */
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  snprintf(path, sizeof path, "%s/server.pem", certs);
  if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) die("certificate");
  snprintf(path, sizeof path, "%s/server.key", certs);
  if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1) die("key");

  base = event_base_new();
  if (!base) die("event_base_new");
  printf("loaded libevent_openssl %s (%s; %s)\n", event_get_version(), event_base_get_method(base),
         OpenSSL_version(OPENSSL_VERSION));
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  listener = evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     BACKLOG, (struct sockaddr *)&addr, sizeof addr);
  if (!listener) die("evconnlistener_new_bind");
  if (getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&addr, &addrlen) < 0) die("getsockname");
  if (strcmp(argv[1], "tls_handshake") == 0) {
    expected = size;
    snprintf(cmd, sizeof cmd, "'%s' handshake %d %ld", client, ntohs(addr.sin_port), size);
  } else if (strcmp(argv[1], "tls_echo_1") == 0 || strcmp(argv[1], "tls_echo_100") == 0) {
    expected = strcmp(argv[1], "tls_echo_1") == 0 ? 1 : 100;
    from_last_handshake = 1;
    snprintf(cmd, sizeof cmd, "'%s' echo %d %ld %ld", client, ntohs(addr.sin_port), expected, size);
  } else {
    fprintf(stderr, "tls_accept: unknown benchmark %s\n", argv[1]);
    return 2;
  }
  fflush(stdout);
  p = popen(cmd, "r");
  if (!p) die("popen");
  if (!from_last_handshake) c0 = cpu();
  event_base_loopexit(base, &cap);
  event_base_dispatch(base);
  c = cpu() - c0;
  while (fgets(line, sizeof line, p)) sscanf(line, "client work=%ld wall=%lf", &work, &wall);
  if (pclose(p) != 0 || work < 0) { errno = 0; die("the client failed"); }
  if (closed != expected) { errno = 0; die("not every connection ended"); }
  evconnlistener_free(listener);
  printf("result %s cpu=%.9g wall=%.9g work=%ld\n", argv[1], c, wall, work);
  return 0;
}

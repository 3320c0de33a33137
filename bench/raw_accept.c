/* Raw libevent TCP echo server (evconnlistener + bufferevents): the floor the Lua servers of the
 * connection benchmarks are measured against. Twin of `accept` and `echo_1000` in
 * bench/luaevent_bench.lua (our core.listener) and bench/luv_bench.lua (luv's tcp server).
 *
 *   gcc -O2 -o raw_accept bench/raw_accept.c $(pkg-config --cflags --libs libevent)
 *   BENCH_CLIENT=net_client ./raw_accept accept N        N short-lived connections
 *   BENCH_CLIENT=net_client ./raw_accept echo_1000 M     1,000 connections x M echoes (timed from the 1,000th accept)
 *
 * Listens on 127.0.0.1 (a free port), starts the client (bench/net_client.c) with popen, echoes
 * every byte back (out:add(in)), frees a connection at its end of file, and stops once as many
 * connections as the client makes have ended. Prints the same lines as bench/common.lua: the
 * server's own CPU time, the client's wall time.
 *   loaded libevent <version>
 *   result <bench> cpu=<s> wall=<s> work=<count>
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_CONNECTIONS 1000
#define BACKLOG 1024
#define TIME_CAP 120

static struct event_base *base;
static long expected, accepted, closed;
static int from_last_accept; /* echo_1000: time the echo alone, from the last accept */
static double c0;

static void die(const char *what) {
  fprintf(stderr, "raw_accept: FAILED: %s (%s)\n", what, strerror(errno));
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
  (void)what; (void)arg;
  bufferevent_free(bev);
  if (++closed == expected) event_base_loopexit(base, NULL);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg) {
  struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  (void)listener; (void)addr; (void)len; (void)arg;
  if (!bev) die("bufferevent_socket_new");
  bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
  bufferevent_enable(bev, EV_READ);
  if (++accepted == expected && from_last_accept) c0 = cpu();
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  socklen_t addrlen = sizeof addr;
  struct evconnlistener *listener;
  struct timeval cap = { TIME_CAP, 0 };
  const char *client = getenv("BENCH_CLIENT");
  char cmd[4096], line[256];
  double c, wall = -1;
  long work = -1, count;
  FILE *p;
  if (argc < 3 || !client) {
    fprintf(stderr, "usage: BENCH_CLIENT=<net_client> raw_accept accept N | echo_1000 M\n");
    return 2;
  }
  count = atol(argv[2]);
  base = event_base_new();
  if (!base) die("event_base_new");
  printf("loaded libevent %s (%s)\n", event_get_version(), event_base_get_method(base));
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  listener = evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     BACKLOG, (struct sockaddr *)&addr, sizeof addr);
  if (!listener) die("evconnlistener_new_bind");
  if (getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&addr, &addrlen) < 0) die("getsockname");
  if (strcmp(argv[1], "accept") == 0) {
    expected = count;
    snprintf(cmd, sizeof cmd, "'%s' accept %d %ld", client, ntohs(addr.sin_port), count);
  } else if (strcmp(argv[1], "echo_1000") == 0) {
    expected = ECHO_CONNECTIONS;
    from_last_accept = 1;
    snprintf(cmd, sizeof cmd, "'%s' echo %d %d %ld", client, ntohs(addr.sin_port), ECHO_CONNECTIONS, count);
  } else {
    fprintf(stderr, "raw_accept: unknown benchmark %s\n", argv[1]);
    return 2;
  }
  fflush(stdout);
  p = popen(cmd, "r");
  if (!p) die("popen");
  if (!from_last_accept) c0 = cpu();
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

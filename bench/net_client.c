/* The one client of the network server benchmarks, on raw libevent, so that the servers (ours,
 * luv, raw libevent) are compared against the same load and the client costs as little as a
 * client can. A server benchmark starts it with popen once it listens, and reads its one line.
 *
 *   gcc -O2 -o net_client bench/net_client.c $(pkg-config --cflags --libs libevent)
 *   ./net_client accept PORT N      N short-lived connections, CONCURRENCY at a time: connect,
 *                                   send MESSAGE bytes, read them back, close; repeat
 *   ./net_client echo PORT C M      C connections at once; once all are up, each sends MESSAGE
 *                                   bytes, reads them back, M times, then closes
 *   ./net_client hold PORT N        opens N connections (blocking connects), prints "held N",
 *                                   then waits until the server closes them all
 *
 * Prints "client work=<count> wall=<seconds>" (accept: connections; echo: messages; wall-clock
 * from the first connect, echo: from the moment all C are up, to the last echo). Only 127.0.0.1.
 * Exits 1 with "net_client: FAILED: ..." on any error; SIGALRM ends it after TIME_CAP seconds.
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

#define MESSAGE 64
#define CONCURRENCY 8
#define TIME_CAP 100

static struct event_base *base;
static struct sockaddr_in server;
static char message[MESSAGE];
static long target, started, finished, rounds;
static long connected;
static struct conn **pending; /* echo mode: the connections waiting for the others */
static double t0;
static int all_up;

struct conn {
  struct bufferevent *bev;
  size_t got;  /* bytes of the current message echoed so far */
  long sent;   /* messages sent on this connection */
};

static void die(const char *what) {
  fprintf(stderr, "net_client: FAILED: %s (%s)\n", what, strerror(errno));
  exit(1);
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void finish(struct conn *c) {
  bufferevent_free(c->bev);
  free(c);
  finished++;
}

static void start_one(void);

static void send_message(struct conn *c) {
  c->got = 0;
  c->sent++;
  if (bufferevent_write(c->bev, message, MESSAGE) < 0) die("bufferevent_write");
}

static void on_read(struct bufferevent *bev, void *arg) {
  struct conn *c = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  c->got += len;
  evbuffer_drain(in, len);
  if (c->got < MESSAGE) return;
  if (c->got > MESSAGE) { errno = 0; die("more bytes back than sent"); }
  if (c->sent < rounds) { send_message(c); return; }
  finish(c);
  if (finished == target) event_base_loopexit(base, NULL);
  else if (started < target) start_one();
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  struct conn *c = arg;
  if (what & BEV_EVENT_CONNECTED) {
    int one = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connected++;
    if (all_up) { send_message(c); return; }
    /* echo mode: the exchanges start once every connection is up */
    if (connected == target) {
      all_up = 1;
      t0 = wall();
      for (long i = 0; i < target; i++) send_message(pending[i]);
    }
    return;
  }
  fprintf(stderr, "net_client: FAILED: connection event 0x%x after %ld finished (%s)\n", what,
          finished, strerror(EVUTIL_SOCKET_ERROR()));
  exit(1);
}

static void start_one(void) {
  struct conn *c = calloc(1, sizeof *c);
  if (!c) die("calloc");
  c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!c->bev) die("bufferevent_socket_new");
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ);
  if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&server, sizeof server) < 0) die("connect");
  if (pending) pending[started] = c;
  started++;
}

static void hold(long n) {
  int *fds = malloc(n * sizeof *fds);
  char byte;
  if (!fds) die("malloc");
  for (long i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0) die("socket");
    if (connect(fds[i], (struct sockaddr *)&server, sizeof server) < 0) die("connect");
  }
  printf("held %ld\n", n);
  fflush(stdout);
  /* the server exits (or closes) once it has measured: every read then ends */
  for (long i = 0; i < n; i++) {
    while (read(fds[i], &byte, 1) > 0) {}
    close(fds[i]);
  }
  exit(0);
}

int main(int argc, char **argv) {
  const char *mode;
  double t;
  if (argc < 4) {
    fprintf(stderr, "usage: net_client accept PORT N | echo PORT C M | hold PORT N\n");
    return 2;
  }
  alarm(TIME_CAP);
  mode = argv[1];
  memset(&server, 0, sizeof server);
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons((unsigned short)atoi(argv[2]));
  target = atol(argv[3]);
  for (int i = 0; i < MESSAGE; i++) message[i] = (char)('a' + i % 26);
  if (target <= 0) { errno = EINVAL; die("count"); }
  if (strcmp(mode, "hold") == 0) hold(target);
  base = event_base_new();
  if (!base) die("event_base_new");
  if (strcmp(mode, "accept") == 0) {
    rounds = 1;
    all_up = 1;
    t0 = wall();
    for (long i = 0; i < CONCURRENCY && i < target; i++) start_one();
  } else if (strcmp(mode, "echo") == 0 && argc > 4) {
    rounds = atol(argv[4]);
    if (rounds <= 0) { errno = EINVAL; die("rounds"); }
    pending = calloc(target, sizeof *pending);
    if (!pending) die("calloc");
    for (long i = 0; i < target; i++) start_one();
  } else {
    fprintf(stderr, "net_client: unknown mode %s\n", mode);
    return 2;
  }
  event_base_dispatch(base);
  t = wall() - t0;
  if (finished != target) {
    fprintf(stderr, "net_client: FAILED: %ld of %ld finished\n", finished, target);
    return 1;
  }
  printf("client work=%ld wall=%.9g\n", strcmp(mode, "accept") == 0 ? target : target * rounds, t);
  return 0;
}

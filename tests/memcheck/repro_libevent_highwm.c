/* libevent 2.1.12 on its own, no Lua: a socket bufferevent whose input reaches its read high
 * watermark while more data waits in the kernel.
 *
 *   cc -O1 -g -o /tmp/highwm tests/memcheck/repro_libevent_highwm.c -levent_core
 *   /tmp/highwm                                   # readcb spins
 *   valgrind --leak-check=full /tmp/highwm        # 11,224 bytes definitely lost
 *   LOOP=1 valgrind --leak-check=full /tmp/highwm # one non-blocking loop after the free: no leak
 *   NOWM=1 valgrind --leak-check=full /tmp/highwm # no high watermark: no spin, no leak
 *
 * 1. readcb runs again and again (hundreds of thousands of times per second, 100% CPU) for as
 *    long as the input stays at the high watermark: libevent issue #891, "EV_READ keep triggering
 *    when input buffer reaches highmark" (a change of behaviour since 2.1.11; 2.1.8 called it once).
 * 2. bufferevent_free() followed by event_base_free() leaks the bufferevent (its 632-byte struct,
 *    both evbuffers, the watermark callback entry and the data): the free is finished by a
 *    finalizer that only the event loop runs, and event_base_free() does not run it in this
 *    state. Running the loop once (EVLOOP_NONBLOCK) after bufferevent_free() releases everything.
 * luaevent.core inherits both through core.bufferevent (tests/memcheck/repro_highwm.lua). */
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long calls;
static void readcb(struct bufferevent *bev, void *arg) { (void)bev; (void)arg; calls++; }
static void eventcb(struct bufferevent *bev, short what, void *arg) { (void)bev; (void)what; (void)arg; }
static void stop(evutil_socket_t fd, short what, void *arg) { (void)fd; (void)what; event_base_loopexit(arg, NULL); }

int main(void) {
  int sv[2];
  static char data[40000];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  memset(data, 'x', sizeof data);
  if (write(sv[0], data, sizeof data) != (ssize_t)sizeof data) return 1;
  struct event_base *base = event_base_new();
  evutil_make_socket_nonblocking(sv[1]);
  struct bufferevent *bev = bufferevent_socket_new(base, sv[1], 0);
  bufferevent_setcb(bev, readcb, NULL, eventcb, NULL);
  if (!getenv("NOWM")) bufferevent_setwatermark(bev, EV_READ, 0, 10000);
  bufferevent_enable(bev, EV_READ);
  struct timeval tv = {0, 200000};
  event_base_once(base, -1, EV_TIMEOUT, stop, base, &tv);
  event_base_dispatch(base);
  printf("libevent %s: readcb ran %ld times in 0.2 s; input holds %zu bytes\n", event_get_version(), calls,
         evbuffer_get_length(bufferevent_get_input(bev)));
  bufferevent_free(bev);
  if (getenv("LOOP")) event_base_loop(base, EVLOOP_NONBLOCK);
  event_base_free(base);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

/*
 * What libevent 2.1 alone reports when a peer sends a few bytes and then resets the connection:
 * a read callback with the bytes, then the event callback with BEV_EVENT_ERROR|BEV_EVENT_READING
 * (33, EVBUFFER_ERROR + EVBUFFER_READ in luaevent's names). tests/faults/io_faults.lua (part 3)
 * expects the same from luaevent.core.
 *
 *   gcc -o /tmp/reset_libevent tests/faults/reset_libevent.c -levent_core && /tmp/reset_libevent
 *
 * Prints "read callback: 5 bytes" then "event callback: what=33".
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_read(struct bufferevent *bev, void *arg) {
  (void)arg;
  struct evbuffer *input = bufferevent_get_input(bev);
  printf("read callback: %zu bytes\n", evbuffer_get_length(input));
  evbuffer_drain(input, evbuffer_get_length(input));
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  (void)arg;
  printf("event callback: what=%d\n", what);
  bufferevent_free(bev);
}

int main(void) {
  struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t length = sizeof address;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(listener, (struct sockaddr *)&address, length) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr *)&address, &length)) { perror("listen"); return 1; }
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, (struct sockaddr *)&address, length)) { perror("connect"); return 1; }
  int server = accept(listener, NULL, NULL);
  /* Five bytes, then a reset: SO_LINGER with a zero timeout makes close() send RST. */
  if (write(client, "hello", 5) != 5) { perror("write"); return 1; }
  struct linger linger = { 1, 0 };
  setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  close(client);
  usleep(50000);
  struct event_base *base = event_base_new();
  evutil_make_socket_nonblocking(server);
  struct bufferevent *bev = bufferevent_socket_new(base, server, 0);
  bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
  bufferevent_enable(bev, EV_READ);
  event_base_dispatch(base);
  event_base_free(base);
  close(server);
  close(listener);
  return 0;
}

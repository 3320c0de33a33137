/*
 * iofault: an LD_PRELOAD shim that makes reads and writes on chosen file descriptors fail
 * with a chosen errno, so that a test can check what a program does on ECONNRESET, EIO,
 * EPIPE (hard faults) and EAGAIN, EINTR (transient ones) without a misbehaving peer.
 *
 * Build:  gcc -shared -fPIC -O2 -Wl,-soname,iofault.so -o iofault.so iofault.c -ldl
 *
 * Reads are read, readv, recv, recvfrom; writes are write, writev, send, sendto. Nothing is
 * faulted until the program asks, by calling getenv with a command as the name (Lua:
 * os.getenv "IOFAULT ..."), which is how a Lua program reaches the shim without a C module:
 *
 *   "IOFAULT fd=7 dir=read errno=ECONNRESET after=2 count=0"
 *        from now on, the 3rd read call on fd 7 and every later one fail with ECONNRESET
 *        without touching the socket. after=N lets N calls through first (default 0);
 *        count=K fails K calls and then lets calls through again (default 0: every call, a
 *        hard fault). dir is read or write; errno is one of ECONNRESET EIO EPIPE EAGAIN
 *        EWOULDBLOCK EINTR ETIMEDOUT ENOTCONN ECONNABORTED. A rule replaces any earlier rule
 *        for the same fd and direction.
 *   "IOFAULT clear fd=7"      removes the rules for fd 7 (closing fd 7 does the same)
 *   "IOFAULT injected fd=7"   returns the number of calls failed on fd 7 so far, as a string
 *   "IOFAULT injected"        the same for all fds
 *
 * Other names go to the real getenv. Commands return NULL except the "injected" queries. At
 * exit the shim writes "iofault: injected N" to stderr when it injected anything or was asked.
 * Single-threaded programs only; at most 64 rules at a time.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

enum { READ_DIR = 0, WRITE_DIR = 1, MAX_RULES = 64 };

struct rule {
  int used, fd, dir, err;
  unsigned long after, count; /* calls to let through first; faults to inject (0: forever) */
  unsigned long seen, failed;
};

static struct rule rules[MAX_RULES];
static unsigned long injected_total;
static unsigned long injected_by_fd[1024];
static int asked;
static char answer[32];

static ssize_t (*next_read)(int, void *, size_t);
static ssize_t (*next_readv)(int, const struct iovec *, int);
static ssize_t (*next_recv)(int, void *, size_t, int);
static ssize_t (*next_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*next_write)(int, const void *, size_t);
static ssize_t (*next_writev)(int, const struct iovec *, int);
static ssize_t (*next_send)(int, const void *, size_t, int);
static ssize_t (*next_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static int (*next_close)(int);
static char *(*next_getenv)(const char *);

__attribute__((constructor)) static void resolve(void) {
  if (next_read) return;
  next_read = dlsym(RTLD_NEXT, "read");
  next_readv = dlsym(RTLD_NEXT, "readv");
  next_recv = dlsym(RTLD_NEXT, "recv");
  next_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
  next_write = dlsym(RTLD_NEXT, "write");
  next_writev = dlsym(RTLD_NEXT, "writev");
  next_send = dlsym(RTLD_NEXT, "send");
  next_sendto = dlsym(RTLD_NEXT, "sendto");
  next_close = dlsym(RTLD_NEXT, "close");
  next_getenv = dlsym(RTLD_NEXT, "getenv");
}

static char *format_number(char *end, unsigned long x) {
  *--end = 0;
  do { *--end = (char)('0' + x % 10); x /= 10; } while (x);
  return end;
}

__attribute__((destructor)) static void report(void) {
  if (!injected_total && !asked) return;
  char line[80], digits[24];
  strcpy(line, "iofault: injected ");
  strcat(line, format_number(digits + sizeof digits, injected_total));
  strcat(line, "\n");
  if (next_write) next_write(2, line, strlen(line));
}

/* Whether this call on fd in direction dir fails; sets errno when it does. */
static int fault(int fd, int dir) {
  for (int i = 0; i < MAX_RULES; i++) {
    struct rule *r = &rules[i];
    if (!r->used || r->fd != fd || r->dir != dir) continue;
    r->seen++;
    if (r->seen <= r->after) return 0;
    if (r->count && r->failed >= r->count) return 0;
    r->failed++;
    injected_total++;
    if (fd >= 0 && fd < 1024) injected_by_fd[fd]++;
    errno = r->err;
    return 1;
  }
  return 0;
}

ssize_t read(int fd, void *buf, size_t n) {
  if (!next_read) resolve();
  return fault(fd, READ_DIR) ? -1 : next_read(fd, buf, n);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
  if (!next_readv) resolve();
  return fault(fd, READ_DIR) ? -1 : next_readv(fd, iov, count);
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
  if (!next_recv) resolve();
  return fault(fd, READ_DIR) ? -1 : next_recv(fd, buf, n, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len) {
  if (!next_recvfrom) resolve();
  return fault(fd, READ_DIR) ? -1 : next_recvfrom(fd, buf, n, flags, from, len);
}

ssize_t write(int fd, const void *buf, size_t n) {
  if (!next_write) resolve();
  return fault(fd, WRITE_DIR) ? -1 : next_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
  if (!next_writev) resolve();
  return fault(fd, WRITE_DIR) ? -1 : next_writev(fd, iov, count);
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
  if (!next_send) resolve();
  return fault(fd, WRITE_DIR) ? -1 : next_send(fd, buf, n, flags);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len) {
  if (!next_sendto) resolve();
  return fault(fd, WRITE_DIR) ? -1 : next_sendto(fd, buf, n, flags, to, len);
}

static void clear(int fd) {
  for (int i = 0; i < MAX_RULES; i++)
    if (rules[i].used && rules[i].fd == fd) rules[i].used = 0;
}

/* A closed fd number is reused by the next open: its rules must not follow it. */
int close(int fd) {
  if (!next_close) resolve();
  clear(fd);
  return next_close(fd);
}

static const struct { const char *name; int value; } errnos[] = {
  { "ECONNRESET", ECONNRESET }, { "EIO", EIO }, { "EPIPE", EPIPE }, { "EAGAIN", EAGAIN },
  { "EWOULDBLOCK", EWOULDBLOCK }, { "EINTR", EINTR }, { "ETIMEDOUT", ETIMEDOUT },
  { "ENOTCONN", ENOTCONN }, { "ECONNABORTED", ECONNABORTED },
};

/* The value of key=... in a command, copied into out (NUL-terminated); 0 if absent. */
static int field(const char *command, const char *key, char *out, size_t size) {
  size_t n = strlen(key);
  for (const char *p = command; (p = strstr(p, key)) != NULL; p += n) {
    if ((p == command || p[-1] == ' ') && p[n] == '=') {
      p += n + 1;
      size_t i = 0;
      while (p[i] && p[i] != ' ' && i + 1 < size) { out[i] = p[i]; i++; }
      out[i] = 0;
      return 1;
    }
  }
  return 0;
}

static long number(const char *text, long fallback) {
  if (!*text) return fallback;
  long x = 0;
  for (; *text >= '0' && *text <= '9'; text++) x = x * 10 + (*text - '0');
  return *text ? fallback : x;
}

static char *command(const char *text) {
  char value[32];
  long fd = field(text, "fd", value, sizeof value) ? number(value, -1) : -2;
  asked = 1;
  if (strncmp(text, "IOFAULT injected", 16) == 0) {
    unsigned long count = fd == -2 ? injected_total : (fd >= 0 && fd < 1024 ? injected_by_fd[fd] : 0);
    return format_number(answer + sizeof answer, count);
  }
  if (fd < 0) return NULL;
  if (strncmp(text, "IOFAULT clear", 13) == 0) { clear((int)fd); return NULL; }
  int dir = -1, err = 0;
  if (field(text, "dir", value, sizeof value))
    dir = strcmp(value, "read") == 0 ? READ_DIR : strcmp(value, "write") == 0 ? WRITE_DIR : -1;
  if (field(text, "errno", value, sizeof value))
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
      if (strcmp(value, errnos[i].name) == 0) err = errnos[i].value;
  if (dir < 0 || !err) return NULL;
  long after = field(text, "after", value, sizeof value) ? number(value, 0) : 0;
  long count = field(text, "count", value, sizeof value) ? number(value, 0) : 0;
  struct rule *slot = NULL;
  for (int i = 0; i < MAX_RULES && !slot; i++)
    if (rules[i].used && rules[i].fd == fd && rules[i].dir == dir) slot = &rules[i];
  for (int i = 0; i < MAX_RULES && !slot; i++)
    if (!rules[i].used) slot = &rules[i];
  if (!slot) return NULL;
  *slot = (struct rule){ 1, (int)fd, dir, err, (unsigned long)after, (unsigned long)count, 0, 0 };
  return NULL;
}

char *getenv(const char *name) {
  if (strncmp(name, "IOFAULT ", 8) == 0) return command(name);
  if (!next_getenv) resolve();
  return next_getenv(name);
}

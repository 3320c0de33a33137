/*
 * failalloc: an LD_PRELOAD shim that makes memory allocation fail at chosen points, so that a
 * test can watch what the program under test does when malloc returns NULL (a Lua module must
 * turn that into a Lua error, never into an abort or a crash).
 *
 * Build:  gcc -shared -fPIC -O2 -o failalloc.so failalloc.c -ldl
 * Use:    LD_PRELOAD=/path/failalloc.so FAILALLOC_SKIP=... program
 *
 * What counts as an allocation: malloc, calloc, realloc (to a non-zero size), posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc; with FAILALLOC_WHAT=mmap or both, also anonymous
 * mmap (LuaJIT takes its Lua heap from mmap, not from malloc). free() is never failed.
 * Only calls made while the shim is armed are counted; call 1 is the first one after arming.
 *
 * Settings (environment, read once at start):
 *   FAILALLOC_WAIT=1     stay disarmed until the program calls getenv("FAILALLOC_ARM") (Lua:
 *                        os.getenv "FAILALLOC_ARM"), so the interpreter and its libraries load
 *                        normally; getenv("FAILALLOC_DISARM") disarms again. Without WAIT the
 *                        shim is armed from the start.
 *   FAILALLOC_SKIP=N     the first N counted calls succeed (default 0)
 *   FAILALLOC_BURST=B    each burst fails B calls in a row (default 1)
 *   FAILALLOC_PERIOD=P   a burst starts every P counted calls, from call N+1 on; 0 (the
 *                        default) means a single burst
 *   FAILALLOC_ODDS=R     instead of PERIOD: a burst starts at call N+1, and after it each call
 *                        starts one with probability 1/R, from a generator seeded with
 *                        FAILALLOC_SEED (default 1): the same settings fail the same calls
 *   FAILALLOC_LIMIT=M    inject at most M failures in all (default: no limit)
 *   FAILALLOC_SIZE=S     count (and fail) only allocations of exactly S bytes, to aim at one
 *                        structure (a calloc counts count * size, an mmap its length)
 *   FAILALLOC_WHAT=heap|mmap|both   what is failed (default heap)
 *   FAILALLOC_REPORT=F   where the report goes (appended; default stderr)
 *   FAILALLOC_VERBOSE=1  one line on stderr per injected failure (function, size, call number)
 *
 * Report: "failalloc: pid P counted C injected I bursts B mmaps M (at exit|at disarm)", written
 * when the program disarms the shim and when it exits normally (M: anonymous mmaps while armed,
 * whether counted or not, for choosing FAILALLOC_SKIP with FAILALLOC_WHAT=mmap). A run that injected nothing proves
 * nothing, so test drivers check I > 0. A process killed by a signal writes no report at exit.
 *
 * How it stays safe: the real functions come from dlsym(RTLD_NEXT), which may itself allocate,
 * so allocations made while resolving are served from a static arena that free() ignores. The
 * shim never allocates, and writes with write(2) only. Calling the next malloc rather than
 * glibc's internal __libc_malloc keeps valgrind working: valgrind redirects libc's malloc to
 * its own, so under valgrind the shim decides and valgrind allocates and tracks. The program
 * under test may run threads (tests/threads): the decision and its counters are taken under a
 * spin lock, so that every counted call gets its own number.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);
static void *(*next_memalign)(size_t, size_t);
static void *(*next_valloc)(size_t);
static void *(*next_pvalloc)(size_t);
static void *(*next_mmap)(void *, size_t, int, int, int, off_t);
static char *(*next_getenv)(const char *);

/* Memory for dlsym's own allocations while the functions above are being looked up. */
static _Alignas(16) char arena[16384];
static size_t arena_used;
static int resolving;

static int settings_read;
static int armed;
static int ever_armed;
static int fail_heap = 1, fail_mmap;
static unsigned long long skip, burst = 1, period, odds, limit, seed = 1, only_size;
static int verbose;
static char report_path[512];

static unsigned long long counted;   /* counted calls since the first arming */
static unsigned long long injected;  /* failures injected */
static unsigned long long bursts;    /* bursts started */
static unsigned long long mmaps;     /* anonymous mmaps seen while armed, failed or not */
static unsigned long long burst_left; /* failures still due in the current burst */
static unsigned long long rng_state;

static void *arena_alloc(size_t size, size_t align) {
  size_t start = (arena_used + align - 1) & ~(align - 1);
  if (start + size > sizeof arena) return NULL;
  arena_used = start + size;
  return arena + start;
}

static int in_arena(const void *p) {
  return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static void resolve(void) {
  if (next_malloc || resolving) return;
  resolving = 1;
  next_malloc = dlsym(RTLD_NEXT, "malloc");
  next_calloc = dlsym(RTLD_NEXT, "calloc");
  next_realloc = dlsym(RTLD_NEXT, "realloc");
  next_free = dlsym(RTLD_NEXT, "free");
  next_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  next_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  next_memalign = dlsym(RTLD_NEXT, "memalign");
  next_valloc = dlsym(RTLD_NEXT, "valloc");
  next_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
  next_mmap = dlsym(RTLD_NEXT, "mmap");
  next_getenv = dlsym(RTLD_NEXT, "getenv");
  resolving = 0;
}

/* The environment read without getenv (which this shim replaces) and without allocating. */
extern char **environ;
static const char *env(const char *name) {
  size_t n = strlen(name);
  if (!environ) return NULL;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static unsigned long long env_number(const char *name, unsigned long long fallback) {
  const char *v = env(name);
  if (!v || !*v) return fallback;
  unsigned long long x = 0;
  for (; *v >= '0' && *v <= '9'; v++) x = x * 10 + (unsigned long long)(*v - '0');
  return x;
}

static void put(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static char *format_number(char *end, unsigned long long x) {
  *--end = 0;
  do { *--end = (char)('0' + x % 10); x /= 10; } while (x);
  return end;
}

static void report(const char *when) {
  char line[256], digits[32];
  line[0] = 0;
  strcat(line, "failalloc: pid ");
  strcat(line, format_number(digits + sizeof digits, (unsigned long long)getpid()));
  strcat(line, " counted ");
  strcat(line, format_number(digits + sizeof digits, counted));
  strcat(line, " injected ");
  strcat(line, format_number(digits + sizeof digits, injected));
  strcat(line, " bursts ");
  strcat(line, format_number(digits + sizeof digits, bursts));
  strcat(line, " mmaps ");
  strcat(line, format_number(digits + sizeof digits, mmaps));
  strcat(line, " (");
  strcat(line, when);
  strcat(line, ")\n");
  int fd = 2, opened = 0;
  if (report_path[0]) {
    fd = open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) fd = 2; else opened = 1;
  }
  put(fd, line);
  if (opened) close(fd);
}

static void read_settings(void) {
  if (settings_read) return;
  settings_read = 1;
  skip = env_number("FAILALLOC_SKIP", 0);
  burst = env_number("FAILALLOC_BURST", 1);
  period = env_number("FAILALLOC_PERIOD", 0);
  odds = env_number("FAILALLOC_ODDS", 0);
  limit = env_number("FAILALLOC_LIMIT", 0);
  only_size = env_number("FAILALLOC_SIZE", 0);
  seed = env_number("FAILALLOC_SEED", 1);
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
  verbose = env_number("FAILALLOC_VERBOSE", 0) != 0;
  const char *what = env("FAILALLOC_WHAT");
  if (what && strcmp(what, "mmap") == 0) { fail_heap = 0; fail_mmap = 1; }
  else if (what && strcmp(what, "both") == 0) { fail_heap = 1; fail_mmap = 1; }
  const char *path = env("FAILALLOC_REPORT");
  if (path && strlen(path) < sizeof report_path) strcpy(report_path, path);
  const char *wait = env("FAILALLOC_WAIT");
  armed = !(wait && strcmp(wait, "1") == 0);
  ever_armed = armed;
}

__attribute__((constructor)) static void start(void) {
  resolve();
  read_settings();
}

__attribute__((destructor)) static void finish(void) {
  if (ever_armed) report("at exit");
}

static unsigned long long next_random(void) {
  /* xorshift64*: deterministic for a seed, no allocation. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Serializes decide() between threads; never held across a call out of the shim. */
static char decide_lock;

static int decide_locked(const char *function, size_t size);

/* Whether this counted call fails. */
static int decide(const char *function, size_t size) {
  if (!__atomic_load_n(&armed, __ATOMIC_RELAXED)) return 0;
  if (only_size && size != only_size) return 0;
  while (__atomic_test_and_set(&decide_lock, __ATOMIC_ACQUIRE)) {}
  int fail = decide_locked(function, size);
  __atomic_clear(&decide_lock, __ATOMIC_RELEASE);
  return fail;
}

static int decide_locked(const char *function, size_t size) {
  if (!armed) return 0;
  unsigned long long call = ++counted;
  if (limit && injected >= limit) return 0;
  if (burst_left == 0 && call > skip) {
    int start_burst;
    if (odds) start_burst = call == skip + 1 || next_random() % odds == 0;
    else if (period) start_burst = (call - skip - 1) % period == 0;
    else start_burst = call == skip + 1;
    if (start_burst) { burst_left = burst; bursts++; }
  }
  if (burst_left == 0) return 0;
  burst_left--;
  injected++;
  if (verbose) {
    char line[160], digits[32];
    line[0] = 0;
    strcat(line, "failalloc: failing ");
    strcat(line, function);
    strcat(line, "(");
    strcat(line, format_number(digits + sizeof digits, size));
    strcat(line, ") at call ");
    strcat(line, format_number(digits + sizeof digits, call));
    strcat(line, "\n");
    put(2, line);
  }
  return 1;
}

static int fail_heap_call(const char *function, size_t size) {
  return fail_heap && decide(function, size);
}

void *malloc(size_t size) {
  if (!next_malloc) {
    if (resolving) return arena_alloc(size, 16);
    resolve();
  }
  if (fail_heap_call("malloc", size)) { errno = ENOMEM; return NULL; }
  return next_malloc(size);
}

void *calloc(size_t count, size_t size) {
  if (!next_calloc) {
    /* The arena is static, hence zeroed, and never reused. */
    if (resolving) return size && count > SIZE_MAX / size ? NULL : arena_alloc(count * size, 16);
    resolve();
  }
  if (fail_heap_call("calloc", count * size)) { errno = ENOMEM; return NULL; }
  return next_calloc(count, size);
}

void *realloc(void *p, size_t size) {
  if (in_arena(p)) {
    /* Rare (only dlsym's early allocations): move the block out of the arena. */
    void *q = malloc(size);
    if (q) memcpy(q, p, size < (size_t)(arena + sizeof arena - (char *)p) ? size : (size_t)(arena + sizeof arena - (char *)p));
    return q;
  }
  if (!next_realloc) {
    if (resolving) return p ? NULL : arena_alloc(size, 16);
    resolve();
  }
  if (size != 0 && fail_heap_call("realloc", size)) { errno = ENOMEM; return NULL; }
  return next_realloc(p, size);
}

void free(void *p) {
  if (!p || in_arena(p)) return;
  if (!next_free) resolve();
  next_free(p);
}

int posix_memalign(void **out, size_t align, size_t size) {
  if (!next_posix_memalign) {
    if (resolving) { *out = arena_alloc(size, align < 16 ? 16 : align); return *out ? 0 : ENOMEM; }
    resolve();
  }
  if (fail_heap_call("posix_memalign", size)) return ENOMEM;
  return next_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size) {
  if (!next_aligned_alloc) {
    if (resolving) return arena_alloc(size, align < 16 ? 16 : align);
    resolve();
  }
  if (fail_heap_call("aligned_alloc", size)) { errno = ENOMEM; return NULL; }
  return next_aligned_alloc(align, size);
}

void *memalign(size_t align, size_t size) {
  if (!next_memalign) {
    if (resolving) return arena_alloc(size, align < 16 ? 16 : align);
    resolve();
  }
  if (fail_heap_call("memalign", size)) { errno = ENOMEM; return NULL; }
  return next_memalign(align, size);
}

void *valloc(size_t size) {
  if (!next_valloc) resolve();
  if (fail_heap_call("valloc", size)) { errno = ENOMEM; return NULL; }
  return next_valloc(size);
}

void *pvalloc(size_t size) {
  if (!next_pvalloc) resolve();
  if (fail_heap_call("pvalloc", size)) { errno = ENOMEM; return NULL; }
  return next_pvalloc(size);
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  if (!next_mmap) resolve();
  if (__atomic_load_n(&armed, __ATOMIC_RELAXED) && (flags & MAP_ANONYMOUS)) {
    __atomic_fetch_add(&mmaps, 1, __ATOMIC_RELAXED);
    if (fail_mmap && decide("mmap", length)) { errno = ENOMEM; return MAP_FAILED; }
  }
  return next_mmap(addr, length, prot, flags, fd, offset);
}

/* LuaJIT and Rust's std call mmap64, a separate symbol (the same function on 64-bit Linux). */
void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  return mmap(addr, length, prot, flags, fd, offset);
}

/* The program's switch: getenv("FAILALLOC_ARM") arms, getenv("FAILALLOC_DISARM") disarms (and
 * reports). Both return NULL unless the variable is really set. Other names pass through. */
char *getenv(const char *name) {
  if (!next_getenv) resolve();
  if (strncmp(name, "FAILALLOC_", 10) == 0) {
    read_settings();
    if (strcmp(name, "FAILALLOC_ARM") == 0) { ever_armed = 1; __atomic_store_n(&armed, 1, __ATOMIC_RELAXED); }
    else if (strcmp(name, "FAILALLOC_DISARM") == 0 && armed) {
      __atomic_store_n(&armed, 0, __ATOMIC_RELAXED);
      burst_left = 0;
      report("at disarm");
    }
  }
  return next_getenv ? next_getenv(name) : (char *)env(name);
}

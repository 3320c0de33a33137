/*
 * threads: luaevent.core in several Lua states on several threads at once, each state on its
 * own base running tests/threads/worker.lua (timers, a listener echoing through bufferevents,
 * DNS lookups answered, cancelled and ended by closing a resolver). What an embedding C program
 * or Lua Lanes does. The module must keep no process-global state it changes after load (see
 * src/reserve.rs): this program, under valgrind --tool=helgrind or not, shows it.
 *
 *   gcc -O2 -pthread -I/usr/include/lua5.4 -o threads tests/threads/threads.c -llua5.4
 *   threads <module dir> <tests dir> [threads]
 *
 * Each thread prints "ok - thread N: <what the worker did>" or "not ok - thread N: <error>";
 * then "threads: N ok, N not ok" and "threads: PASS" (or FAIL). Exit status 0 when every thread passed, 1 otherwise. With
 * THREADS_EXPECT_ERRORS=1 (under failing allocations) a Lua error is no failure: only the end
 * of every thread, without a crash, is checked.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 32

struct job {
  int id;
  int ready; /* passed the `set_up` barrier */
  const char *module_dir;
  const char *tests_dir;
  int ok;
  char line[512];
};

/* Waits for every thread to be ready, so that they all load the module and run at once. */
static pthread_barrier_t start;
/* Waits for every worker to have set up, before failing allocations start (the shim's arming
 * is process-wide): the worker's THREADS_READY(). */
static pthread_barrier_t set_up;

static int threads_ready(lua_State *L) {
  struct job *job = lua_touserdata(L, lua_upvalueindex(1));
  if (!job->ready) {
    job->ready = 1;
    pthread_barrier_wait(&set_up);
  }
  return 0;
}

static void *run(void *arg) {
  struct job *job = arg;
  lua_State *L = luaL_newstate();
  if (!L) {
    snprintf(job->line, sizeof job->line, "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  char path[1024];
  /* The module under test first, then the interpreter's own paths (for LuaSocket). */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "cpath");
  snprintf(path, sizeof path, "%s/?.so;%s", job->module_dir, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "cpath");
  lua_getfield(L, -1, "path");
  snprintf(path, sizeof path, "%s/?.lua;%s", job->module_dir, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_pushinteger(L, job->id);
  lua_setglobal(L, "THREAD_ID");
  lua_pushstring(L, job->tests_dir);
  lua_setglobal(L, "TESTS_DIR");
  lua_pushlightuserdata(L, job);
  lua_pushcclosure(L, threads_ready, 1);
  lua_setglobal(L, "THREADS_READY");
  snprintf(path, sizeof path, "%s/threads/worker.lua", job->tests_dir);
  int loaded = luaL_loadfile(L, path);
  pthread_barrier_wait(&start);
  if (loaded == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK) {
    job->ok = 1;
    snprintf(job->line, sizeof job->line, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no line)");
  } else {
    const char *error = lua_tostring(L, -1);
    snprintf(job->line, sizeof job->line, "%s", error ? error : "(an error that is not a string)");
  }
  if (!job->ready) { /* failed before: the others must not wait for it */
    job->ready = 1;
    pthread_barrier_wait(&set_up);
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <module dir> <tests dir> [threads]\n", argv[0]);
    return 2;
  }
  int count = argc > 3 ? atoi(argv[3]) : 4;
  if (count < 1 || count > MAX_THREADS) count = 4;
  int expect_errors = getenv("THREADS_EXPECT_ERRORS") && strcmp(getenv("THREADS_EXPECT_ERRORS"), "1") == 0;
  struct job jobs[MAX_THREADS];
  pthread_t threads[MAX_THREADS];
  pthread_barrier_init(&start, NULL, (unsigned)count);
  pthread_barrier_init(&set_up, NULL, (unsigned)count);
  for (int i = 0; i < count; i++) {
    jobs[i] = (struct job){ .id = i + 1, .module_dir = argv[1], .tests_dir = argv[2] };
    if (pthread_create(&threads[i], NULL, run, &jobs[i]) != 0) {
      fprintf(stderr, "threads: cannot create thread %d\n", i + 1);
      return 2;
    }
  }
  int good = 0, bad = 0;
  for (int i = 0; i < count; i++) {
    pthread_join(threads[i], NULL);
    int ok = jobs[i].ok || expect_errors;
    printf("%s - thread %d: %s\n", ok ? "ok" : "not ok", jobs[i].id, jobs[i].line);
    if (ok) good++; else bad++;
  }
  pthread_barrier_destroy(&start);
  pthread_barrier_destroy(&set_up);
  printf("threads: %d ok, %d not ok\n", good, bad);
  printf("threads: %s\n", bad == 0 ? "PASS" : "FAIL");
  return bad == 0 ? 0 : 1;
}

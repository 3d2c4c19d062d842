/*
 * A persistent pthread pool. `lm_parallel` publishes one job (fn, ctx, ntasks), wakes the
 * workers, takes part itself, and returns once every task has run and every worker has checked
 * out of the job. Tasks are claimed from an atomic counter, so uneven tasks balance themselves.
 *
 * The pool serves one caller at a time: a second, concurrent caller (e.g. a Node worker thread)
 * finds the pool busy and runs its tasks on its own thread, so results never depend on it.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "vmath512.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 256
/* After a job, workers (and the caller, waiting for them) may spin this many pause instructions
 * before sleeping on the condition variable: a futex wake-up costs 10-20 us. Off by default:
 * on a shared or oversubscribed machine (CI, several jobs on 2 cores) spinning threads steal the
 * time slices of the threads they wait for and a call became 6x slower; set LUMEN_SPIN (e.g.
 * 2000, ~40 us) on a dedicated machine. */
static int SPIN = 0;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

typedef struct {
  pthread_t threads[MAX_THREADS];
  int nthreads;                   /* including the caller */
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  _Atomic uint64_t generation;    /* bumped (release) for each job; workers wait for a change */
  _Atomic int quit;
  _Atomic int checked_out;        /* workers finished with the current job */
  lm_task_fn fn; void *ctx; int64_t ntasks;
  /* Tasks are split into one contiguous range per thread; range i is claimed through next[i]
   * (up to end[i]). A thread runs its own range first, then steals from the others' ranges, so
   * a late-waking worker still gets its share while a descheduled one is covered by the rest. */
  _Atomic int64_t next[MAX_THREADS];
  int64_t end[MAX_THREADS];
} pool_t;

static pool_t pool = { .nthreads = 1, .mu = PTHREAD_MUTEX_INITIALIZER,
                       .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };
static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
/* the generation current when the workers were started (no job can be published meanwhile:
 * lm_set_threads holds `busy`), so a worker that starts late still sees the first job */
static uint64_t start_generation;

static void run_tasks(lm_task_fn fn, void *ctx, int64_t ntasks, int tid) {
  (void)ntasks;
  const int n = pool.nthreads;
  for (int k = 0; k < n; k++) {
    const int r = (tid + k) % n;  /* own range first, then the others' */
    for (;;) {
      int64_t t = atomic_fetch_add_explicit(&pool.next[r], 1, memory_order_relaxed);
      if (t >= pool.end[r]) break;
      fn(ctx, t, tid);
    }
  }
}

static void *worker(void *arg) {
  int tid = (int)(intptr_t)arg;
  uint64_t seen = start_generation;
  for (;;) {
    for (int spins = 0; spins < SPIN; spins++) {
      if (atomic_load_explicit(&pool.generation, memory_order_acquire) != seen || atomic_load(&pool.quit)) break;
      cpu_relax();
    }
    if (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen && !atomic_load(&pool.quit)) {
      pthread_mutex_lock(&pool.mu);
      while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.quit)) pthread_cond_wait(&pool.wake, &pool.mu);
      pthread_mutex_unlock(&pool.mu);
    }
    if (atomic_load(&pool.quit)) break;
    seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
    /* a new job cannot be published before every worker checked out of this one */
    run_tasks(pool.fn, pool.ctx, pool.ntasks, tid);
    if (atomic_fetch_add(&pool.checked_out, 1) + 1 == pool.nthreads - 1) {
      pthread_mutex_lock(&pool.mu);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mu);
    }
  }
  /* scratch buffers of this thread are freed by lm_scratch's destructor key */
  return NULL;
}

static void stop_workers(void) {
  pthread_mutex_lock(&pool.mu);
  atomic_store(&pool.quit, 1);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  for (int i = 1; i < pool.nthreads; i++) pthread_join(pool.threads[i], NULL);
  atomic_store(&pool.quit, 0);
  pool.nthreads = 1;
}

void lm_set_threads(int n) {
  const char *spin = getenv("LUMEN_SPIN");
  SPIN = spin ? atoi(spin) : 0;
  if (SPIN < 0) SPIN = 0;
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&busy);
  stop_workers();
  start_generation = atomic_load(&pool.generation);
  int started = 1;
  for (int i = 1; i < n; i++) {
    if (pthread_create(&pool.threads[i], NULL, worker, (void *)(intptr_t)i) != 0) break;
    started++;
  }
  pool.nthreads = started;
  pthread_mutex_unlock(&busy);
}

int lm_get_threads(void) { return pool.nthreads; }

int64_t lm_split(int64_t work, int64_t grain) {
  if (grain < 1) grain = 1;
  int64_t t = work / grain;
  if (t < 1) t = 1;
  int64_t cap = (int64_t)pool.nthreads * 4;
  return t < cap ? t : cap;
}

void lm_parallel(int64_t ntasks, lm_task_fn fn, void *ctx) {
  if (ntasks <= 0) return;
  if (ntasks == 1 || pool.nthreads == 1 || pthread_mutex_trylock(&busy) != 0) {
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  if (pool.nthreads == 1) {  /* raced with lm_set_threads */
    pthread_mutex_unlock(&busy);
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&pool.mu);
  pool.fn = fn; pool.ctx = ctx; pool.ntasks = ntasks;
  for (int i = 0; i < pool.nthreads; i++) {
    const int64_t lo = ntasks * i / pool.nthreads, hi = ntasks * (i + 1) / pool.nthreads;
    atomic_store_explicit(&pool.next[i], lo, memory_order_relaxed);
    pool.end[i] = hi;
  }
  atomic_store(&pool.checked_out, 0);
  atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  run_tasks(fn, ctx, ntasks, 0);
  const int workers = pool.nthreads - 1;
  for (int spins = 0; spins < SPIN && atomic_load(&pool.checked_out) < workers; spins++) cpu_relax();
  if (atomic_load(&pool.checked_out) < workers) {
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&pool.checked_out) < workers) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
  }
  pthread_mutex_unlock(&busy);
}

/* ---------------------------------------------------------------- per-thread scratch */

typedef struct { void *p[4]; size_t n[4]; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch_t *s = v;
  for (int i = 0; i < 4; i++) free(s->p[i]);
  free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *lm_scratch(int slot, size_t bytes) {
  pthread_once(&scratch_once, scratch_init);
  scratch_t *s = pthread_getspecific(scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_setspecific(scratch_key, s);
  }
  if (s->n[slot] < bytes) {
    free(s->p[slot]);
    size_t sz = (bytes + 63) & ~(size_t)63;
    s->p[slot] = aligned_alloc(64, sz);
    s->n[slot] = s->p[slot] ? sz : 0;
  }
  return s->p[slot];
}

const char *lm_isa(void) {
#if defined(LUMEN_AVX2)
#if defined(LUMEN_HAVE_512_PATH)
  if (lm_have_avx512()) return "avx2+fma+avx512f";
#endif
  return "avx2+fma";
#elif defined(LUMEN_NEON)
  return "neon";
#else
  return "scalar";
#endif
}

typedef struct { lm_range_fn fn; void *ctx; int64_t n, chunk; } range_ctx;

static void range_task(void *vctx, int64_t t, int tid) {
  range_ctx *r = vctx;
  int64_t lo = t * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
  if (lo < hi) r->fn(r->ctx, lo, hi);
}

static void parallel_aligned(int64_t n, int64_t grain, int64_t align, lm_range_fn fn, void *ctx) {
  if (n <= 0) return;
  int64_t tasks = lm_split(n, grain);
  if (tasks <= 1) { fn(ctx, 0, n); return; }
  int64_t chunk = ((n + tasks - 1) / tasks + align - 1) / align * align;
  range_ctx r = { fn, ctx, n, chunk };
  lm_parallel((n + chunk - 1) / chunk, range_task, &r);
}

void lm_parallel_range(int64_t n, int64_t grain, lm_range_fn fn, void *ctx) { parallel_aligned(n, grain, 64, fn, ctx); }
void lm_parallel_rows(int64_t n, int64_t grain, lm_range_fn fn, void *ctx) { parallel_aligned(n, grain, 1, fn, ctx); }

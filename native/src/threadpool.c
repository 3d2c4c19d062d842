/*
 * A persistent pthread pool. `lm_parallel` publishes one job (fn, ctx, ntasks), wakes the
 * workers, takes part itself, and returns once every task has run. Tasks are claimed from atomic
 * counters, so uneven tasks balance themselves.
 *
 * Late workers: a worker takes part in a job only if it enters it while the job is open. When
 * the caller has run out of tasks to claim it closes the job and waits only for the workers that
 * entered (they may still be running tasks they claimed); a worker that wakes after that skips
 * the job. So a worker that is descheduled or slow to wake (a busy or virtualised machine) never
 * holds the caller up: the caller and the other workers do its share.
 *
 * Waiting: between jobs a worker polls for the next one for a bounded time (LUMEN_SPIN
 * microseconds, default 100; 0 = never) before sleeping on a condition variable; the caller
 * polls for the entered workers to finish (they are running tasks). Back-to-back jobs (the GEMM's packing and
 * compute phases, the ops of a training step) then reach an awake worker at once instead of
 * paying a futex wake-up, which on a VM can take tens of microseconds to milliseconds when the
 * vCPU has gone idle. The polling loop calls sched_yield() between short bursts of pause, so on an
 * oversubscribed machine a polling thread hands its core to whichever thread can use it (an
 * earlier pure busy-wait took the time slices of the very threads it waited for).
 *
 * The pool serves one caller at a time: a second, concurrent caller (e.g. a Node worker thread)
 * finds the pool busy and runs its tasks on its own thread, so results never depend on it.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "vmath512.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define DEFAULT_SPIN_US 100
static int64_t SPIN_NS = (int64_t)DEFAULT_SPIN_US * 1000;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* job state word: the job's sequence number in the high 32 bits, CLOSED, and the number of
 * workers inside the job in the low bits */
#define CLOSED ((uint64_t)1 << 31)
#define INSIDE_MASK (CLOSED - 1)
#define SEQ(s) ((uint32_t)((s) >> 32))

typedef struct {
  pthread_t threads[MAX_THREADS];
  int nthreads;                   /* including the caller */
  pthread_mutex_t mu;
  pthread_cond_t wake;
  _Atomic uint64_t state;         /* see above; a new job is published with a release store */
  _Atomic int quit;
  _Atomic int caller_cpu;         /* the CPU the caller published the current job from, or -1 */
  lm_task_fn fn; void *ctx;
  /* Tasks are split into one contiguous range per thread; range i is claimed through next[i]
   * (up to end[i]). A thread runs its own range first, then steals from the others' ranges, so
   * a late-waking worker still gets its share while a descheduled one is covered by the rest. */
  _Atomic int64_t next[MAX_THREADS];
  int64_t end[MAX_THREADS];
} pool_t;

static pool_t pool = { .nthreads = 1, .caller_cpu = -1, .mu = PTHREAD_MUTEX_INITIALIZER,
                       .wake = PTHREAD_COND_INITIALIZER };
static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
/* the job sequence number current when the workers were started (no job can be published
 * meanwhile: lm_set_threads holds `busy`), so a worker that starts late still sees the first job */
static uint32_t start_seq;

static void run_tasks(lm_task_fn fn, void *ctx, int tid) {
  const int n = pool.nthreads;
  for (int k = 0; k < n; k++) {
    const int r = (tid + k) % n;  /* own range first, then the others' */
    for (;;) {
      if (atomic_load_explicit(&pool.next[r], memory_order_relaxed) >= pool.end[r]) break;
      int64_t t = atomic_fetch_add_explicit(&pool.next[r], 1, memory_order_relaxed);
      if (t >= pool.end[r]) break;
      fn(ctx, t, tid);
    }
  }
}

static int new_job(void *arg) {
  return SEQ(atomic_load_explicit(&pool.state, memory_order_acquire)) != *(uint32_t *)arg || atomic_load(&pool.quit);
}
static int workers_out(void *arg) {
  (void)arg;
  return (atomic_load_explicit(&pool.state, memory_order_acquire) & INSIDE_MASK) == 0;
}

/* ---- keeping a worker off the caller's CPU (Linux)
 *
 * The scheduler can leave a worker on the same CPU as the caller for tens of milliseconds (seen
 * on a 2-vCPU VM: a woken worker is placed on the waker's CPU, and the periodic balancer does not
 * move threads that ran in the last 0.5 ms), while another CPU idles: the two then share one core
 * and a 2-thread GEMM runs at the speed of one. A worker that finds itself on the caller's CPU
 * when it enters a job therefore moves itself off it: it narrows its CPU mask to exclude that CPU
 * (which migrates it at once) and restores the mask. Only when the pool has no more threads than
 * the worker may use CPUs (otherwise sharing is unavoidable), at most every 10 ms per worker. */
typedef struct {
#if defined(__linux__)
  cpu_set_t allowed;              /* the worker's CPU mask when it started */
  int nallowed;
  int64_t last_move;
#endif
  int tid;
} worker_t;

static void worker_init(worker_t *w, int tid) {
  w->tid = tid;
#if defined(__linux__)
  w->nallowed = pthread_getaffinity_np(pthread_self(), sizeof w->allowed, &w->allowed) == 0 ? CPU_COUNT(&w->allowed) : 0;
  w->last_move = 0;
#endif
}

static void leave_caller_cpu(worker_t *w) {
#if defined(__linux__)
  const int cc = atomic_load_explicit(&pool.caller_cpu, memory_order_relaxed);
  if (cc < 0 || w->nallowed < 2 || w->nallowed < pool.nthreads || cc >= CPU_SETSIZE || !CPU_ISSET(cc, &w->allowed)) return;
  if (sched_getcpu() != cc) return;
  const int64_t t = now_ns();
  if (t - w->last_move < 10000000) return;
  w->last_move = t;
  cpu_set_t away = w->allowed;
  CPU_CLR(cc, &away);
  if (pthread_setaffinity_np(pthread_self(), sizeof away, &away) == 0)
    pthread_setaffinity_np(pthread_self(), sizeof w->allowed, &w->allowed);
#else
  (void)w;
#endif
}

/* Polls until ready(arg) or SPIN_NS have passed; returns ready(arg). A polling worker (w) also
 * moves off the caller's CPU if it finds itself there. */
static int poll_for(int (*ready)(void *), void *arg, worker_t *w) {
  if (ready(arg)) return 1;
  if (SPIN_NS <= 0) return 0;
  const int64_t deadline = now_ns() + SPIN_NS;
  for (;;) {
    for (int i = 0; i < 16; i++) {
      cpu_relax();
      if (ready(arg)) return 1;
    }
    sched_yield();
    if (ready(arg)) return 1;
    if (w) leave_caller_cpu(w);
    if (now_ns() > deadline) return 0;
  }
}

static void *worker(void *arg) {
  const int tid = (int)(intptr_t)arg;
  worker_t self;
  worker_init(&self, tid);
  uint32_t seen = start_seq;
  for (;;) {
    if (!poll_for(new_job, &seen, &self)) {
      pthread_mutex_lock(&pool.mu);
      while (!new_job(&seen)) pthread_cond_wait(&pool.wake, &pool.mu);
      pthread_mutex_unlock(&pool.mu);
    }
    if (atomic_load(&pool.quit)) break;
    /* enter the newest job, unless it is already closed */
    uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
    int entered = 0;
    while (!(s & CLOSED)) {
      if (atomic_compare_exchange_weak_explicit(&pool.state, &s, s + 1, memory_order_acquire, memory_order_acquire)) {
        entered = 1;
        break;
      }
    }
    seen = SEQ(s);
    if (!entered) continue;
    leave_caller_cpu(&self);
    /* inside the job: its description cannot change until this worker leaves */
    run_tasks(pool.fn, pool.ctx, tid);
    atomic_fetch_sub_explicit(&pool.state, 1, memory_order_release);
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
  int64_t us = spin && spin[0] ? atoll(spin) : DEFAULT_SPIN_US;
  SPIN_NS = us > 0 ? (us < 1000000 ? us : 1000000) * 1000 : 0;
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&busy);
  stop_workers();
  start_seq = SEQ(atomic_load(&pool.state));
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
  /* the previous job is closed and empty: no worker reads these fields now */
  pool.fn = fn; pool.ctx = ctx;
#if defined(__linux__)
  atomic_store_explicit(&pool.caller_cpu, sched_getcpu(), memory_order_relaxed);
#endif
  for (int i = 0; i < pool.nthreads; i++) {
    const int64_t lo = ntasks * i / pool.nthreads, hi = ntasks * (i + 1) / pool.nthreads;
    atomic_store_explicit(&pool.next[i], lo, memory_order_relaxed);
    pool.end[i] = hi;
  }
  const uint64_t seq = (uint64_t)(SEQ(atomic_load_explicit(&pool.state, memory_order_relaxed)) + 1u);
  pthread_mutex_lock(&pool.mu);
  atomic_store_explicit(&pool.state, seq << 32, memory_order_release);   /* open, nobody inside */
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  run_tasks(fn, ctx, 0);
  /* every task is claimed: close the job and wait for the workers that entered it. They are
   * running tasks they claimed, so the wait is short; the caller polls (yielding its core to
   * anything runnable) rather than sleeping, because a woken thread tends to be placed on its
   * waker's CPU, i.e. on the worker's (see leave_caller_cpu). */
  uint64_t s = atomic_fetch_or_explicit(&pool.state, CLOSED, memory_order_acq_rel);
  if ((s & INSIDE_MASK) != 0)
    for (int i = 0; !workers_out(NULL); i++) {
      cpu_relax();
      if ((i & 15) == 15) sched_yield();
    }
  pthread_mutex_unlock(&busy);
}

/* ---------------------------------------------------------------- per-thread scratch */

typedef struct { void *p[5]; size_t n[5]; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch_t *s = v;
  for (int i = 0; i < 5; i++) free(s->p[i]);
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

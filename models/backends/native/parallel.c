// A second thread for Arcadia's kernels (GEMM, Adam), compiled first into the kernel library.
//
// One persistent helper thread, woken per call. It spins briefly (a learner issues kernels back to back) and then
// sleeps on a condition variable, so an idle process costs nothing. A call's work is cut into slices that both
// threads claim from one counter: on a loaded machine, when the helper is descheduled, the caller takes its slices
// instead of waiting for it. Callers that find the helper busy (another Deno Worker) run alone. Results never depend
// on who runs which slice.
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define arc_pause() _mm_pause()
#else
#define arc_pause() ((void)0)
#endif

/** One slice of a parallel call; returns 0 or an error code. */
typedef int (*arc_slice_fn)(const void *ctx, int slice);

typedef struct {
  arc_slice_fn fn;
  const void *ctx;
  int slices;
} arc_job;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; // held by the caller that owns the helper
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static atomic_uint job_seq;
static _Atomic uint64_t claims; // (job sequence << 32) | next unclaimed slice
static atomic_int slices_done, slices_failed, helper_sleeping;
static arc_job helper_job;
static int helper_state; // 0 not started, 1 running, -1 could not start
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;
static int pinned;

// The helper thread (and GEMM's per-thread buffers' destructor) run this library's code after the Deno Worker that
// opened it may have closed it, so the library pins itself in memory (RTLD_NODELETE) for the life of the process.
static void pin_self(void) {
  Dl_info info;
  pinned = dladdr((void *)pin_self, &info) && dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

// Claim and run slices of job `seq` until none is left (a claim for an older job fails, so a late helper never
// touches a newer job's slices through stale fields).
static void run_slices(const arc_job *j, unsigned seq) {
  for (;;) {
    uint64_t v = atomic_load(&claims);
    if ((unsigned)(v >> 32) != seq || (int)(uint32_t)v >= j->slices) return;
    if (!atomic_compare_exchange_weak(&claims, &v, v + 1)) continue;
    const int rc = j->fn(j->ctx, (int)(uint32_t)v);
    if (rc) atomic_store(&slices_failed, rc);
    atomic_fetch_add(&slices_done, 1);
  }
}

static void *helper_main(void *unused) {
  (void)unused;
  unsigned seen = 0;
  for (;;) {
    unsigned seq;
    int spins = 0;
    while ((seq = atomic_load(&job_seq)) == seen) {
      if (++spins < 20000) { // ~0.1-0.5 ms: long enough to bridge the gaps between a training step's kernels
        arc_pause();
        continue;
      }
      pthread_mutex_lock(&wake_lock);
      atomic_store(&helper_sleeping, 1);
      // seq_cst store of `helper_sleeping` then load of `job_seq` here, and the reverse in the caller: one of the two
      // sides always sees the other, so a wake-up is never lost.
      while (atomic_load(&job_seq) == seen) pthread_cond_wait(&wake_cond, &wake_lock);
      atomic_store(&helper_sleeping, 0);
      pthread_mutex_unlock(&wake_lock);
      spins = 0;
    }
    seen = seq;
    const arc_job j = helper_job;
    run_slices(&j, seq);
  }
  return NULL;
}

static int start_helper(void) {
  pthread_once(&pin_once, pin_self);
  if (!pinned) return -1;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  const int rc = pthread_create(&t, &attr, helper_main, NULL);
  pthread_attr_destroy(&attr);
  return rc == 0 ? 1 : -1;
}

// Run fn(ctx, s) for every s in [0, slices), on two threads when `threads` > 1 and the helper is free, else on the
// calling thread. Returns 0, or the error code of a failed slice.
static int arc_parallel(arc_slice_fn fn, const void *ctx, int slices, int threads) {
  if (threads > 1 && slices > 1 && pthread_mutex_trylock(&pool_lock) == 0) {
    if (helper_state == 0) helper_state = start_helper();
    if (helper_state == 1) {
      helper_job = (arc_job){fn, ctx, slices};
      const unsigned seq = atomic_load(&job_seq) + 1;
      atomic_store(&slices_done, 0);
      atomic_store(&slices_failed, 0);
      atomic_store(&claims, (uint64_t)seq << 32);
      atomic_store(&job_seq, seq);
      if (atomic_load(&helper_sleeping)) {
        pthread_mutex_lock(&wake_lock);
        pthread_cond_signal(&wake_cond);
        pthread_mutex_unlock(&wake_lock);
      }
      run_slices(&helper_job, seq);
      for (int spins = 0; atomic_load(&slices_done) < slices; spins++) {
        if (spins < 4096) arc_pause();
        else sched_yield(); // the helper was preempted mid-slice: let it finish
      }
      const int rc = atomic_load(&slices_failed);
      pthread_mutex_unlock(&pool_lock);
      return rc;
    }
    pthread_mutex_unlock(&pool_lock);
  }
  for (int s = 0; s < slices; s++) {
    const int rc = fn(ctx, s);
    if (rc) return rc;
  }
  return 0;
}

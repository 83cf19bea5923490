// nest-herald/ffi: the task queue and the answer ring of the host, free
// of Node so that a plain C++ harness (sanitizers, stress) can drive them.
// host.cc adds the Node side: the per-environment sink that wakes the event
// loop, and the JS bindings.
#ifndef HERALD_FFI_QUEUE_H
#define HERALD_FFI_QUEUE_H

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <new>

namespace herald_ffi {
// Internal linkage on purpose: with external linkage the dynamic linker would
// unify these (inline variables become process-wide unique symbols), and a
// second copy of the addon would dispatch to the first copy's code.
namespace {

// Two copies of the package (two versions in node_modules, or a copy loaded
// by a worker bundle) may live in one process. Both promote themselves to the
// global scope, and a runtime's undefined ngx_* symbols bind to whichever
// copy was promoted first. So queues and tasks start with a magic value and
// the operations of the copy that created them: the exported functions check
// the magic and dispatch, and a queue is always served by its own copy.
constexpr uint64_t kQueueMagic = 0x6865726c64747131ULL;  // "herldtq1"
constexpr uint64_t kTaskMagic = 0x6865726c64746b31ULL;   // "herldtk1"
constexpr uint64_t kDeadMagic = 0x6465616464656164ULL;   // freed task

struct Ops {
  void *(*poll)(void *tq);
  char *(*get_req)(void *task, int *len);
  void (*respond)(void *task, int rc, char *rsp, int rsp_len);
};

struct Header {
  uint64_t magic;
  const Ops *ops;
};

struct Task;
struct Slab;  // pools.h

// One answer as the JS thread reads it. The answering thread fills it in
// (TaskRespond) from the task and the runtime's answer, so the JS thread
// never reads the task (written by another core) to deliver it.
struct Answer {
  Task *task;    // to give back to the pool; not read by the JS thread
  char *rsp;     // the answer: in `slab`, or the runtime's block, or NULL
  Slab *slab;    // the slab rsp was copied into (it holds a reference), or NULL
  size_t len;    // bytes (per herald_ffi.h and the runtime's ZeroLength)
  int32_t slot;  // the JS call this answers
  int32_t rc;
  uint32_t req_cap;   // the task's request capacity (its pool class)
  bool unterminated;  // rsp_len 0 and no NUL within rsp's block: answered empty
};

// A cell of the answer ring (one cache line: answering threads writing
// neighbouring cells do not share a line). `seq` is the cell's turn
// (Vyukov's bounded MPMC queue, here with one consumer): index i is free for
// the producer of ticket i when seq == i, holds its answer when seq == i+1,
// and is free again, for ticket i + cells, once the consumer set it so.
struct alignas(64) AnswerCell {
  std::atomic<uint64_t> seq;
  Answer answer;
};

// Where answers go: a ring of answer records that the answering threads
// fill in turn and the JS thread reads in order (contiguous cells, so it
// reads them with independent, prefetchable loads instead of chasing `next`
// pointers through tasks that other cores wrote), and a lock-free stack of
// tasks for when the ring is full (the task carries its Answer then). The
// loop is woken by the answer that finds it `armed` (idle); the JS thread
// disarms it while it drains, so answers that arrive meanwhile cost no
// wake-up: the drain takes them, and arms it again only once it found
// nothing more (FinishDrain).
// `reserve` (any thread) hands out room for one small answer in a shared slab
// and a reference on that slab; `release` (the JS thread) drops one. Without
// them answers stay where the runtime put them.
struct Completions {
  static constexpr uint64_t kDefaultCells = 2048;

  explicit Completions(uint64_t cells = kDefaultCells) : mask(cells - 1) {
    // A power of two, at least 2.
    ring = static_cast<AnswerCell *>(aligned_alloc(64, sizeof(AnswerCell) * cells));
    for (uint64_t i = 0; i < cells; i++) new (&ring[i].seq) std::atomic<uint64_t>(i);
  }
  ~Completions() { free(ring); }
  Completions(const Completions &) = delete;
  Completions &operator=(const Completions &) = delete;

  AnswerCell *ring;
  const uint64_t mask;  // cells - 1
  void (*wake)(Completions *self) = nullptr;
  char *(*reserve)(Completions *self, size_t bytes, Slab **slab) = nullptr;
  void (*release)(Completions *self, Slab *slab) = nullptr;

  // Written by the answering threads (every answer), read by the JS thread
  // once per round: a line of their own.
  alignas(64) std::atomic<uint64_t> tail{0};  // the next ticket
  std::atomic<Task *> done{nullptr};          // the overflow stack, newest first
  // Read by every answer, written by the JS thread once per drain and by the
  // answer that wakes it: a line of its own.
  alignas(64) std::atomic<uint32_t> armed{1};
  // The CPU the JS thread ran its last drain on (Disarm), read by a poller
  // about to sleep (PollerSpin): a poller on the same CPU must not spin.
  std::atomic<int32_t> js_cpu{-1};
  // The JS thread's own (never written by the answering threads).
  alignas(64) uint64_t head = 0;  // the next ticket to read
  uint64_t round_end = 0;         // the tail when the round began
  Task *overflow = nullptr;       // taken from `done`, oldest first
  Answer staged{};                // the overflow task's answer being peeked
  bool peeked_ring = false;
  uint64_t ring_answers = 0;      // answers read from the ring,
  uint64_t overflow_answers = 0;  // and from the overflow stack
};

// How to read an answer with rsp != NULL and rsp_len == 0 (herald_ffi.h).
enum ZeroLength : uint8_t {
  // The ABI's reading: a NUL-terminated string, read no further than the
  // block the allocator says rsp is (see AnswerLengthOf).
  kZeroLengthCString = 0,
  // An empty answer (runtimes that answer malloc(0) + rsp_len 0, e.g. the
  // original's Go echo for an empty request).
  kZeroLengthEmpty = 1,
};

struct Task {
  Header header;
  Task *next;
  Completions *completions;
  int32_t slot;  // the JS call this task answers
  int32_t req_len;
  uint32_t req_cap;     // bytes allocated for req (pooled tasks are reused)
  uint8_t zero_length;  // ZeroLength of the runtime
  // Set by respond only when the ring was full (the task then goes on the
  // overflow stack).
  Answer answer;
  char req[1];  // req_len bytes and a NUL, allocated with the task
};

struct Queue {
  Header header;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  Task *head;
  Task *tail;
  // As in the original: post counts up, poll counts down *before* it blocks,
  // so `waiting` = queued - idle pollers and the capacity is max_queue plus
  // the idle pollers.
  int64_t waiting;
  int64_t queued;
  int64_t max_queue;
  bool finished;  // after unload: a tombstone, never freed
  // Pollers asleep on cv (under mu): a post wakes at most that many, and
  // none (no futex call) when the idle poller is spinning.
  int64_t sleepers;
  // Adaptive spinning (see PollerSpin): the longest a poller spins, in ns (0:
  // never), running averages of the waits for a task no longer than that
  // (ns) and of the share of waits that were (in 1/1024), and whether one
  // poller is spinning now (at most one does).
  int64_t spin_max_ns;
  int64_t short_wait_ns;
  int64_t short_share;
  // Tasks taken since a poller last found the queue empty, and their running
  // average per wait (in 1/256: an integer average of weight 1/8 stops
  // moving within 7 units of its target): only calls made one at a time are
  // worth a spin (PollerSpin).
  int64_t run;
  int64_t run_avg;
  int64_t posted_ns;  // when the last task was posted (only kept when spinning is on)
  bool spinning;
  // Where this queue's answers go (set by the host before init): while its
  // JS thread delivers, the next calls are on their way (PollerSpin).
  Completions *completions;
  // Counters for stats(): spins begun, and those that found a task.
  uint64_t spins;
  uint64_t spin_hits;
};

enum PostStatus { kPosted = 0, kFull = 1, kFinished = 2 };

// Answers up to this size are copied by the answering thread into a shared
// slab that JS sees slices of; larger ones get a Buffer of their own.
constexpr size_t kCopyMax = 4096;

inline void QueueAppend(Queue *q, Task *first, Task *last, int64_t count);

inline int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Folds one wait (ns from "no task" to "task posted", mu held) into the
// averages (weight 1/8: the last dozen waits or so count).
inline void NoteWait(Queue *q, int64_t ns) {
  bool short_wait = ns <= q->spin_max_ns;
  q->short_share += ((short_wait ? 1024 : 0) - q->short_share) / 8;
  if (short_wait) q->short_wait_ns += (ns - q->short_wait_ns) / 8;
}

// Bounded adaptive spinning, called with mu held and the queue empty: with
// one call in flight, the next call arrives a few microseconds after the
// answer, and a poller asleep on the condvar costs a futex wait, a futex wake
// from the JS thread and a scheduler wake-up (tens of microseconds on a loaded
// machine) per call. Like glibc's adaptive mutexes, a poller spins only while
// recent waits were short: when at least half of the recent waits were no
// longer than spin_max_ns, for up to twice their average (and never more
// than spin_max_ns). An idle or slow caller, or a loaded machine where the
// JS thread waits for a CPU, makes waits long: spinning stops, and as every
// wait, spun or slept, is measured, it resumes when waits get short again.
// Nor does it spin unless pollers took at most 1.5 tasks per wait of late
// (calls made one at a time): with more calls in flight, a poller that
// sleeps wakes to a batch of calls and answers them together, so the JS
// thread gets them in one wake-up; a spinning poller answers each call at
// once and the JS thread wakes for each (at 4 in flight on a loaded machine
// that cost 25-30% of the calls/s, at 64 in flight 15-40%).
// The exception: while the JS thread is delivering answers on another CPU
// (the sink disarmed), the calls its callers make next are posted when the
// batch is done, a few microseconds away, at any number in flight: a poller
// that slept then costs the JS thread a futex wake of a thread on another CPU
// per batch, and the poller a sleep and a wake-up. In a VM whose other vCPU
// is idle (a quiet machine) that is the dearest thing on the path: 16 us of
// the waker's CPU for the futex wake alone, ~45 us per thread per sleep/wake
// round trip, against ~3 us on one CPU (a probe, futex ping-pong between two
// pinned threads, 2 vCPUs of an EPYC guest). It made the JS thread's CPU per
// call depend on where the scheduler put the threads: 1.26 us per call at
// 64 B x 64 in flight with the poller on the other CPU, 0.31 on the same.
// Not when both share a CPU: a spinning poller would only hold up the JS
// thread it waits for.
// One poller spins at a time; it yields the CPU between checks of the clock,
// so a loaded machine's other threads (the JS thread first) still run.
// Returns with mu held.
// 1.5 tasks per wait, in 1/256 (measured: 1 in flight ~1.0-1.2, 2 ~1.9).
constexpr int64_t kSpinRunMax256 = 384;
inline bool JsDelivering(const Queue *q) {
  const Completions *c = q->completions;
  return c != nullptr && c->armed.load(std::memory_order_relaxed) == 0 &&
         c->js_cpu.load(std::memory_order_relaxed) != sched_getcpu();
}
inline void PollerSpin(Queue *q, int64_t started) {
  int64_t max = q->spin_max_ns;
  if (q->spinning || q->short_share < 512 || (q->run_avg > kSpinRunMax256 && !JsDelivering(q))) return;
  int64_t budget = q->short_wait_ns * 2 + 2000;
  if (budget > max) budget = max;
  q->spinning = true;
  q->spins++;
  pthread_mutex_unlock(&q->mu);
  int64_t deadline = started + budget;
  bool found = false;
  for (uint32_t i = 1;; i++) {
    if (__atomic_load_n(&q->head, __ATOMIC_RELAXED) != nullptr) {
      found = true;
      break;
    }
    if (__atomic_load_n(&q->finished, __ATOMIC_RELAXED)) break;  // unloaded
    // A yield every 16 pauses: under KVM a longer run of pauses looks like
    // a lock spin (pause-loop exiting) and the host may deschedule the vCPU.
    if ((i & 15) == 0) {
      if (NowNs() >= deadline) break;
      sched_yield();
    } else {
      CpuRelax();
    }
  }
  pthread_mutex_lock(&q->mu);
  q->spinning = false;
  if (found) q->spin_hits++;
}

inline void *QueuePoll(void *p) {
  Queue *q = static_cast<Queue *>(p);
  if (pthread_mutex_lock(&q->mu) != 0) return nullptr;
  if (q->finished) {
    pthread_mutex_unlock(&q->mu);
    return nullptr;
  }
  __atomic_sub_fetch(&q->waiting, 1, __ATOMIC_RELAXED);
  if (q->head == nullptr && !q->finished) {
    q->run_avg += (q->run * 256 - q->run_avg) / 8;
    q->run = 0;
    int64_t started = q->spin_max_ns > 0 ? NowNs() : 0;
    if (started != 0) PollerSpin(q, started);
    // A task the spin saw may have been taken by another poller meanwhile.
    while (q->head == nullptr && !q->finished) {
      q->sleepers++;
      int err = pthread_cond_wait(&q->cv, &q->mu);
      q->sleepers--;
      if (err != 0) {
        __atomic_add_fetch(&q->waiting, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&q->mu);
        return nullptr;
      }
    }
    // The wait counts until the task was posted, not until this poller woke:
    // its own wake-up latency is what spinning saves, not a reason to stop.
    if (started != 0) NoteWait(q, (q->posted_ns > started ? q->posted_ns : started) - started);
  }
  if (q->finished) {
    pthread_mutex_unlock(&q->mu);
    return nullptr;
  }
  Task *t = q->head;
  q->run++;
  __atomic_store_n(&q->head, t->next, __ATOMIC_RELAXED);
  if (q->head == nullptr) q->tail = nullptr;
  q->queued--;
  pthread_mutex_unlock(&q->mu);
  t->next = nullptr;
  return t;
}

// Appends `count` tasks (first..last, linked) and wakes as many sleeping
// pollers as there are new tasks, less one when a poller is spinning (it
// sees them without a wake). The caller checked the limit (only the JS
// thread posts, so `waiting` can only have gone down since).
inline void QueueAppend(Queue *q, Task *first, Task *last, int64_t count) {
  pthread_mutex_lock(&q->mu);
  int64_t idle = q->sleepers;
  // A spinning poller takes one of the tasks without a wake: it checks the
  // queue under mu once more when it stops spinning, before it sleeps.
  int64_t wake = count - (q->spinning ? 1 : 0);
  __atomic_add_fetch(&q->waiting, count, __ATOMIC_RELAXED);
  q->queued += count;
  if (q->spin_max_ns > 0) q->posted_ns = NowNs();
  last->next = nullptr;
  if (q->tail)
    q->tail->next = first;
  else
    __atomic_store_n(&q->head, first, __ATOMIC_RELAXED);
  q->tail = last;
  pthread_mutex_unlock(&q->mu);
  if (idle <= 0 || wake <= 0) return;
  if (wake >= idle) {
    pthread_cond_broadcast(&q->cv);
  } else {
    for (int64_t i = 0; i < wake; i++) pthread_cond_signal(&q->cv);
  }
}

// Marks the queue finished, wakes every poller (each then gets NULL, for
// ever) and returns the tasks no poller took.
inline Task *QueueFinish(Queue *q) {
  pthread_mutex_lock(&q->mu);
  Task *rest = q->head;
  __atomic_store_n(&q->head, nullptr, __ATOMIC_RELAXED);
  q->tail = nullptr;
  q->queued = 0;
  __atomic_store_n(&q->finished, true, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&q->mu);
  pthread_cond_broadcast(&q->cv);
  return rest;
}

inline char *TaskGetReq(void *p, int *len) {
  Task *t = static_cast<Task *>(p);
  if (len) *len = t->req_len;
  return t->req;
}

inline void TaskRespond(void *p, int rc, char *rsp, int rsp_len);

inline const Ops kOps = {QueuePoll, TaskGetReq, TaskRespond};

inline void Complain(const char *fn, const void *p) {
  fprintf(stderr,
          "ffi foreign-pointer: %s called with %p, which is not a queue or task of "
          "this host (nest-herald/ffi: freed, answered twice, or not from nest-herald) "
          "[fn=%s]\n",
          fn, p, fn);
}

inline bool IsQueue(void *p) {
  return p && static_cast<Header *>(p)->magic == kQueueMagic;
}
inline bool IsTask(void *p) {
  return p && static_cast<Header *>(p)->magic == kTaskMagic;
}

// The length of an answer, per herald_ffi.h. For rsp_len == 0 with rsp !=
// NULL under kZeroLengthCString, the read is bounded by the block's usable
// size as the process's allocator reports it (malloc_usable_size: glibc,
// jemalloc, tcmalloc, mimalloc and ASan all provide it, and it is the same
// allocator whose free() releases rsp, as the ABI requires). The bound keeps
// the read inside the block; it cannot make the bytes meaningful: glibc
// reports 24 usable bytes for malloc(0), holding whatever was there before,
// so a runtime that answers malloc(0) + rsp_len 0 needs kZeroLengthEmpty. No
// NUL within the block is a broken answer: it is read as empty and flagged.
inline size_t AnswerLengthOf(const char *rsp, int32_t rsp_len, uint8_t zero_length,
                             bool *unterminated) {
  *unterminated = false;
  if (rsp == nullptr || rsp_len < 0) return 0;
  if (rsp_len > 0) return static_cast<size_t>(rsp_len);
  if (zero_length == kZeroLengthEmpty) return 0;
  size_t bound = malloc_usable_size(const_cast<char *>(rsp));
  size_t len = strnlen(rsp, bound);
  if (len == bound) {
    *unterminated = true;
    return 0;
  }
  return len;
}

// Appends an answer to the ring; false when the ring is full.
inline bool RingPush(Completions *c, const Answer &a) {
  uint64_t pos = c->tail.load(std::memory_order_relaxed);
  for (;;) {
    AnswerCell &cell = c->ring[pos & c->mask];
    // Acquire: the JS thread's read of the cell's last answer is done.
    uint64_t seq = cell.seq.load(std::memory_order_acquire);
    int64_t diff = static_cast<int64_t>(seq - pos);
    if (diff == 0) {
      if (c->tail.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
        cell.answer = a;
        // seq_cst: ordered before this thread's read of `armed` (see
        // TaskRespond and FinishDrain).
        cell.seq.store(pos + 1, std::memory_order_seq_cst);
        return true;
      }
    } else if (diff < 0) {
      return false;  // the cell of ticket pos - cells is not read yet: full
    } else {
      pos = c->tail.load(std::memory_order_relaxed);
    }
  }
}

inline void TaskRespond(void *p, int rc, char *rsp, int rsp_len) {
  Task *t = static_cast<Task *>(p);
  Completions *c = t->completions;
  Answer a;
  a.task = t;
  a.rsp = rsp;
  a.slab = nullptr;
  a.len = AnswerLengthOf(rsp, rsp_len, t->zero_length, &a.unterminated);
  a.slot = t->slot;
  a.rc = rc;
  a.req_cap = t->req_cap;
  // A small answer is copied here, on the runtime's thread, into a slab the
  // JS thread hands out slices of, and freed here: the JS thread neither
  // copies answers (a quarter of its time at 1024 in flight, reading bytes
  // another core wrote) nor frees blocks of the runtime's malloc arena (which
  // made that arena grow and shrink: page faults).
  if (rsp != nullptr && a.len > 0 && a.len <= kCopyMax && c->reserve) {
    Slab *slab = nullptr;
    char *room = c->reserve(c, a.len, &slab);
    if (room != nullptr) {
      memcpy(room, rsp, a.len);
      free(rsp);
      a.rsp = room;
      a.slab = slab;
    }
  }
  // Answered: a second respond on it is refused from now on (the JS thread
  // gives it back to the pool without touching it).
  t->header.magic = kDeadMagic;
  if (!RingPush(c, a)) {
    t->answer = a;
    Task *head = c->done.load(std::memory_order_relaxed);
    do {
      t->next = head;
    } while (!c->done.compare_exchange_weak(head, t, std::memory_order_seq_cst,
                                            std::memory_order_relaxed));
  }
  // After the answer is visible (seq_cst on both sides): either the JS thread
  // sees it when it checks after arming (FinishDrain), or this sees it armed.
  if (c->armed.load(std::memory_order_seq_cst) != 0 &&
      c->armed.exchange(0, std::memory_order_seq_cst) != 0)
    c->wake(c);
}

// The JS thread's side. A drain: Disarm, then rounds of BeginRound and
// PeekAnswer/PopAnswer until PeekAnswer finds nothing, until FinishDrain
// says nothing arrived meanwhile (and armed the wake-up again).

// Answers that arrive from now on do not wake the loop (the drain takes
// them, see FinishDrain).
inline void Disarm(Completions *c) {
  c->armed.store(0, std::memory_order_relaxed);
  c->js_cpu.store(sched_getcpu(), std::memory_order_relaxed);
}

// A round takes what was answered when it began: the ring up to its tail
// then, and the overflow stack.
inline void BeginRound(Completions *c) {
  c->round_end = c->tail.load(std::memory_order_acquire);
  // Read before taking: `done` shares its line with `tail`, which every
  // answer writes; an exchange per round when the stack is empty (nearly
  // always) would take that line from the answering thread each time.
  Task *stack = c->done.load(std::memory_order_relaxed) == nullptr
                    ? nullptr
                    : c->done.exchange(nullptr, std::memory_order_acq_rel);
  Task *list = c->overflow;  // normally empty: a round reads all of it
  while (stack != nullptr) {
    Task *next = stack->next;
    stack->next = list;
    list = stack;
    stack = next;
  }
  c->overflow = list;
}

// The next answer of the round (valid until PopAnswer), or NULL. The ring is
// read in ticket order; a ticket whose producer has not finished writing
// its cell (preempted between the two) ends the ring's part of the round:
// that producer wakes the loop if the drain has ended meanwhile.
inline const Answer *PeekAnswer(Completions *c) {
  if (c->head < c->round_end) {
    AnswerCell &cell = c->ring[c->head & c->mask];
    if (cell.seq.load(std::memory_order_acquire) == c->head + 1) {
      c->peeked_ring = true;
      return &cell.answer;
    }
  }
  if (c->overflow != nullptr) {
    c->staged = c->overflow->answer;
    c->peeked_ring = false;
    return &c->staged;
  }
  return nullptr;
}

// Done with the answer PeekAnswer returned: its cell is free again.
inline void PopAnswer(Completions *c) {
  if (c->peeked_ring) {
    c->ring[c->head & c->mask].seq.store(c->head + c->mask + 1, std::memory_order_release);
    c->head++;
    c->ring_answers++;
  } else {
    c->overflow = c->overflow->next;
    c->overflow_answers++;
  }
}

// True when answers wait (seq_cst: see FinishDrain).
inline bool HasCompletions(Completions *c) {
  return c->overflow != nullptr ||
         c->ring[c->head & c->mask].seq.load(std::memory_order_seq_cst) == c->head + 1 ||
         c->done.load(std::memory_order_seq_cst) != nullptr;
}

// Ends a drain if nothing arrived: arms the wake-up (the next answer wakes
// the loop). False when answers arrived meanwhile (the drain goes on; the
// wake-up stays disarmed, or an answer already took it and woke the loop,
// which then finds nothing or what came later).
inline bool FinishDrain(Completions *c) {
  if (HasCompletions(c)) return false;
  c->armed.store(1, std::memory_order_seq_cst);
  if (!HasCompletions(c)) return true;
  c->armed.store(0, std::memory_order_relaxed);
  return false;
}

// The default of spin_max_ns (NativeRuntimeOptions.pollerSpinUs).
constexpr int64_t kDefaultSpinNs = 50000;

// CPUs this process may run on (its affinity mask, e.g. taskset or a
// container's cpuset), else the CPUs online.
inline long UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return sysconf(_SC_NPROCESSORS_ONLN);
}

// A new queue; runtimes get it as `tq`. Never freed: after QueueFinish it
// stays as a tombstone that answers NULL to every poll. Pollers spin for up
// to spin_ns before they sleep (adaptive, see PollerSpin); never when the
// process may use one CPU only, where a spinning poller only delays the
// thread it waits for.
inline Queue *QueueCreate(int64_t max_queue, int64_t spin_ns = kDefaultSpinNs) {
  Queue *q = static_cast<Queue *>(calloc(1, sizeof(Queue)));
  q->header.magic = kQueueMagic;
  q->header.ops = &kOps;
  // Critical sections are a few pointer moves: spin briefly before sleeping.
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&q->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  pthread_cond_init(&q->cv, nullptr);
  q->max_queue = max_queue;
  q->spin_max_ns = UsableCpus() > 1 && spin_ns > 0 ? spin_ns : 0;
  q->short_share = 1024;  // start by trying: the first waits tell
  return q;
}

// The exported ABI functions: check the magic, then dispatch to the copy of
// the host that made the queue or task.
inline void *AbiTaskPoll(void *tq) {
  if (!IsQueue(tq)) {
    Complain("task_poll", tq);
    return nullptr;
  }
  return static_cast<Header *>(tq)->ops->poll(tq);
}

inline char *AbiGetReq(void *task, int *len) {
  if (!IsTask(task)) {
    Complain("get_req", task);
    if (len) *len = 0;
    return nullptr;
  }
  return static_cast<Header *>(task)->ops->get_req(task, len);
}

inline void AbiRespond(void *task, int rc, char *rsp, int rsp_len) {
  if (!IsTask(task)) {
    Complain("respond", task);
    return;
  }
  static_cast<Header *>(task)->ops->respond(task, rc, rsp, rsp_len);
}


// Frees the runtime's answer, or drops the reference on the slab it was
// copied into (JS thread).
inline void FreeAnswer(Completions *c, const Answer &a) {
  if (a.slab != nullptr)
    c->release(c, a.slab);
  else
    free(a.rsp);
}

}  // namespace
}  // namespace herald_ffi

#endif  // HERALD_FFI_QUEUE_H

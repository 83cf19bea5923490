// nest-herald/ffi native host: the host side of the lua-resty-ffi C ABI for
// Node. A runtime library polls tasks from a queue on its own threads and
// answers from any thread; answers are handed to the JS thread through one
// uv_async handle, many per wake-up, without ever blocking the event loop.
//
// Layout: queue.h holds the ABI objects (queue, task, answer ring) free
// of Node; this file adds the completion sink (per Node environment), the JS
// bindings and the exported C functions.

#include <napi.h>
#include <uv.h>
#ifndef HERALD_FFI_NAPI_ONLY
#include <v8.h>
#endif

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <atomic>
#include <string>
#include <vector>

#include "pools.h"
#include "queue.h"

#define HERALD_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using namespace herald_ffi;


// ---------------------------------------------------------------------------
// Completion sink: one per Node environment. Runtime threads write answer
// records into its ring (or, when full, push the task on a lock-free stack);
// the answer that finds the loop idle (armed) wakes it. The JS thread reads
// every answer per wake-up, and again those that arrived while it delivered
// (they did not wake it: it is disarmed while it drains). The sink is never
// freed, so a respond that races environment teardown stays safe.

struct Runtime {
  Queue *queue;
  void *lib;
  std::string path;
  bool unloaded;
  uint8_t zero_length;  // ZeroLength: how its rsp_len == 0 answers read
  // Calls made while answers are being delivered (typically the next call of
  // each awaiting caller) are posted together when the batch is done: one
  // lock and one wake-up instead of one each, and no lock fights with the
  // pollers while they answer.
  Task *deferred_head;
  Task *deferred_tail;
  int64_t deferred;
  bool dirty;
  // The queue's limit, and a bound on its `waiting` that the JS thread keeps
  // itself: it adds what it posts, and the pollers only lower `waiting`, so
  // a call under the limit by this bound is under it for sure. Submit reads
  // the queue's counter (a line the pollers write at every poll) only when
  // the bound says the queue may be full.
  int64_t max_queue;
  int64_t waiting_bound;
};

// Posts `count` tasks (the JS thread) and counts them in the bound.
void Post(Runtime *rt, Task *first, Task *last, int64_t count) {
  QueueAppend(rt->queue, first, last, count);
  rt->waiting_bound += count;
}

struct Sink : Completions {
  // Touched by the answering thread that wakes the loop.
  alignas(64) uv_async_t async;
  pthread_mutex_t mu;  // orders uv_async_send against uv_close
  bool closed = false;
  // The JS thread's own from here (a line apart from the above).
  alignas(64) napi_env env = nullptr;
  napi_ref callback = nullptr;
  napi_ref meta_ref = nullptr;
  napi_ref resource = nullptr;
  napi_async_context actx = nullptr;
  int32_t *meta = nullptr;
  size_t meta_cap = 0;  // completions per JS batch
  std::vector<uint8_t> cancelled;
  std::vector<Answer> chunk;  // the chunk being delivered (meta_cap answers)
  std::vector<Runtime *> runtimes;
  uint64_t wakeups = 0;
  uint64_t batches = 0;  // calls into JS (chunks), one or more per wake-up
  uint64_t answers = 0;
  // Answers that arrived during a drain and were delivered by it (no wake-up
  // of their own), and drains that stopped at kDrainRounds with answers left.
  uint64_t late_answers = 0;
  uint64_t drain_yields = 0;
  bool late_round = false;  // the drain is past its first round
  // Calls posted and neither answered nor abandoned: the handle keeps the
  // loop alive while there are any (counted here, not by a call from JS per
  // call in flight that starts or ends).
  int64_t awaited = 0;
  // Slabs with a Buffer answers are delivered over (Slab::js): one Buffer per
  // slab, not per wake-up. Cleared once napi_create_external_buffer fails
  // (where external buffers are not allowed): a copy per chunk then.
  std::vector<Slab *> open_slabs;
  // Slabs JS got a Buffer over that V8 may not have collected yet
  // (CollectSlabs), and the slabs counted as V8 external memory.
  std::vector<Slab *> collecting;
  int64_t accounted_slabs = 0;
  bool slab_buffers = true;
  bool external_checked = false;
  bool delivering = false;
  std::vector<Runtime *> dirty;
  TaskPool tasks;  // every task of this environment comes from here
  SlabPool slabs;  // small answers, copied by the answering threads
};

void Await(Sink *s) {
  if (s->awaited++ == 0) uv_ref(reinterpret_cast<uv_handle_t *>(&s->async));
}

void Settle(Sink *s, int64_t calls) {
  if (calls > 0 && (s->awaited -= calls) == 0) uv_unref(reinterpret_cast<uv_handle_t *>(&s->async));
}

void FlushDeferred(Sink *s) {
  for (Runtime *rt : s->dirty) {
    rt->dirty = false;
    if (rt->deferred == 0) continue;
    Post(rt, rt->deferred_head, rt->deferred_tail, rt->deferred);
    rt->deferred_head = rt->deferred_tail = nullptr;
    rt->deferred = 0;
  }
  s->dirty.clear();
}

// Answers up to kCopyMax (queue.h) were copied by the answering thread into
// a shared slab: a chunk hands JS the one Buffer over that slab (JS sees
// slices of it, like Node's own Buffer pool); a chunk ends where the slab
// changes. Larger answers get a Buffer of their own.
// Answers above kCopyMax and up to this are copied into their own Buffer;
// larger ones are handed over without a copy.
constexpr size_t kZeroCopyMin = 32 * 1024;

// A zero-copy answer's Buffer was collected. No napi_adjust_external_memory
// here or at creation: V8 counts an external Buffer's bytes itself, and
// adding them again made it run a full GC twice as often (860 instead of 488
// mark-compacts in 350k answers of 100 KiB at 64 in flight).
void FinalizeExternal(napi_env env, void *data, void *hint) { free(data); }

// Slab Buffers and V8's full GCs. A slab's bytes are the pool's, allocated
// once and reused. An external Buffer per slab use (what this was) made V8
// count 512 KiB of new external memory per 128 answers of 4 KiB, and take
// it off when a scavenge freed the Buffer, all at once: V8 starts a full GC
// once the count is 64 MiB above its lowest point since the last one, so
// whenever a scavenge came later than ~128 slabs (and at 1024 in flight it
// does), a full GC ran that freed nothing the scavenger would not have
// (bench:ffi's cost part: 5-7 per 100k calls, "external memory pressure",
// more with whatever else the process loads). Taking the bytes off the
// count by hand and giving them back when collected cannot fix that: V8
// takes them off in one lump per GC, and whatever is given back after that
// lump counts as new growth.
//
// So V8 does not count a slab's bytes per Buffer at all: each slab gets one
// V8 backing store over its bytes with V8's empty deleter (V8 counts no
// bytes for a backing store whose deleter frees nothing), kept by the slab
// for its life, and every use of the slab gets a new ArrayBuffer over that
// same store. V8 holds a reference on the store while such an ArrayBuffer
// lives; once the reference count shows only the slab's own, every Buffer
// over that use was collected and the slab goes back to the pool
// (CollectSlabs, on the JS thread, when the next slab Buffer is made). The
// pool's memory is then counted once per slab allocated or freed
// (napi_adjust_external_memory): a count that stays flat in steady state.
#ifdef HERALD_FFI_NAPI_ONLY
// The portable build (the shipped node.napi prebuild, loaded by any Node
// with N-API): N-API alone, so one external Buffer per slab use, counted by
// V8 per Buffer (the full GCs described above come back: about 5-6 per 100k
// calls of 4 KiB at 64-1024 in flight). Builds for one Node ABI (from
// source, or the shipped node.abi<N> prebuild) take the V8 path below.
// A Buffer over a slab was collected (JS thread). Without a sink (the
// environment is going away) the slab stays referenced: never reused.
void ReleaseSlab(napi_env env, void *data, void *hint) {
  Sink *s = nullptr;
  napi_get_instance_data(env, reinterpret_cast<void **>(&s));
  if (s == nullptr) return;
  Slab *slab = static_cast<Slab *>(hint);
  slab->js_buffers--;
  s->slabs.Release(slab);
}

bool SlabBuffer(Sink *s, Slab *slab, napi_value *out) {
  napi_env env = s->env;
  if (slab->js != nullptr)
    return napi_get_reference_value(env, static_cast<napi_ref>(slab->js), out) == napi_ok && *out != nullptr;
  if (!s->slab_buffers) return false;
  if (napi_create_external_buffer(env, SlabPool::kSlabSize, slab->data, ReleaseSlab, slab, out) != napi_ok) {
    s->slab_buffers = false;
    return false;
  }
  s->slabs.Ref(slab);  // the Buffer's, dropped by ReleaseSlab
  slab->js_buffers++;
  // Without a handle to keep it by, it serves this chunk only.
  napi_ref ref;
  if (napi_create_reference(env, *out, 1, &ref) != napi_ok) return true;
  slab->js = ref;
  s->open_slabs.push_back(slab);
  return true;
}
#else
using Store = std::shared_ptr<v8::BackingStore>;

void DropStore(void *store) { delete static_cast<Store *>(store); }

// Slabs whose ArrayBuffers V8 collected go back to the pool; the external
// memory count follows the number of slabs allocated.
void CollectSlabs(Sink *s) {
  std::vector<Slab *> &list = s->collecting;
  for (size_t i = 0; i < list.size();) {
    Slab *slab = list[i];
    // References V8 holds: one per ArrayBuffer over the store not yet freed.
    long held = static_cast<Store *>(slab->store)->use_count() - 1;
    if (held < slab->js_buffers) {
      std::atomic_thread_fence(std::memory_order_acquire);
      int64_t gone = slab->js_buffers - held;
      slab->js_buffers = held;
      if (held == 0) {
        list[i] = list.back();
        list.pop_back();
      } else {
        i++;
      }
      s->slabs.Release(slab, gone);  // may recycle it: last use of `slab`
    } else {
      i++;
    }
  }
  int64_t live = static_cast<int64_t>(s->slabs.live());
  if (live != s->accounted_slabs) {
    int64_t total;
    napi_adjust_external_memory(s->env, (live - s->accounted_slabs) * static_cast<int64_t>(SlabPool::kSlabSize), &total);
    s->accounted_slabs = live;
  }
}

// The Buffer answers in `slab` are delivered over: made the first time an
// answer of the slab is delivered and kept until none can come any more
// (CloseDrainedSlabs), so an ArrayBuffer and its view cost once per slab
// (128 answers of 4 KiB), not once per wake-up: with one per wake-up they
// were about a third of the main thread's instructions per wake-up. False
// where no ArrayBuffer could be made (the caller copies).
bool SlabBuffer(Sink *s, Slab *slab, napi_value *out) {
  napi_env env = s->env;
  if (slab->js != nullptr)
    return napi_get_reference_value(env, static_cast<napi_ref>(slab->js), out) == napi_ok && *out != nullptr;
  if (!s->slab_buffers) return false;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (!s->external_checked) {
    // Where external memory may not back an ArrayBuffer (a V8 sandbox, as
    // in Electron), Node refuses external buffers, and V8 would abort on a
    // backing store outside its cage: ask Node once, copy if refused.
    static char probe_byte;
    napi_value probe;
    if (isolate == nullptr ||
        napi_create_external_arraybuffer(env, &probe_byte, 1, nullptr, nullptr, &probe) != napi_ok) {
      s->slab_buffers = false;
      return false;
    }
    s->external_checked = true;
  }
  CollectSlabs(s);
  if (slab->store == nullptr) {
    std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
        slab->data, SlabPool::kSlabSize, v8::BackingStore::EmptyDeleter, nullptr);
    slab->store = new Store(std::move(store));
  }
  v8::Local<v8::ArrayBuffer> bytes = v8::ArrayBuffer::New(isolate, *static_cast<Store *>(slab->store));
  // A napi_value is a v8::Local's slot (Node's v8impl::JsValueFromV8LocalValue);
  // the handle lives in DeliverChunk's handle scope.
  napi_value array_buffer = reinterpret_cast<napi_value>(*bytes);
  if (napi_create_typedarray(env, napi_uint8_array, SlabPool::kSlabSize, array_buffer, 0, out) != napi_ok) {
    // The ArrayBuffer is garbage; CollectSlabs sees it go like any other.
    s->slab_buffers = false;
    return false;
  }
  s->slabs.Ref(slab);  // the ArrayBuffer's, dropped by CollectSlabs
  if (slab->js_buffers++ == 0) s->collecting.push_back(slab);
  // Without a handle to keep it by, it serves this chunk only.
  napi_ref ref;
  if (napi_create_reference(env, *out, 1, &ref) != napi_ok) return true;
  slab->js = ref;
  s->open_slabs.push_back(slab);
  return true;
}
#endif  // HERALD_FFI_NAPI_ONLY

// A slab no answer can come from any more (no longer filled, every answer
// reserved in it delivered or dropped: refs == js_buffers, which then stays
// so) lets go of its Buffer: from then on only the slices JS keeps hold it,
// and their collection returns it to the pool. The slab being filled stays
// open between wake-ups.
void CloseDrainedSlabs(Sink *s) {
  std::vector<Slab *> &open = s->open_slabs;
  for (size_t i = 0; i < open.size();) {
    Slab *slab = open[i];
    if (slab->refs.load(std::memory_order_acquire) == slab->js_buffers) {
      napi_delete_reference(s->env, static_cast<napi_ref>(slab->js));
      slab->js = nullptr;
      open[i] = open.back();
      open.pop_back();
    } else {
      i++;
    }
  }
}

char *ReserveAnswer(Completions *c, size_t bytes, Slab **slab) {
  return static_cast<Sink *>(c)->slabs.Reserve(bytes, slab);
}

void ReleaseAnswer(Completions *c, Slab *slab) { static_cast<Sink *>(c)->slabs.Release(slab); }

void ReportException(napi_env env) {
  napi_value error;
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
}

bool Cancelled(Sink *s, int32_t slot) {
  return static_cast<size_t>(slot) < s->cancelled.size() && s->cancelled[slot];
}

// Hands one chunk of the round's answers to JS: meta[4i..4i+3] = slot, rc,
// offset, length; offset >= 0: bytes in the slab Buffer; -1:
// externals[length]; -2: the call was abandoned (timeout/abort) and its
// answer already freed; -3: rsp_len 0 and no NUL within rsp's block (read as
// empty, JS counts and logs it). False when the round has no answer left.
bool DeliverChunk(Sink *s) {
  napi_env env = s->env;
  size_t n = 0, externals = 0, in_slab = 0;
  Slab *slab = nullptr;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  // The answer records are copied out of the ring (and its cells freed for
  // the answering threads) into the JS thread's own array; the answer bytes
  // and the tasks are not read.
  Answer *chunk = s->chunk.data();
  while (n < s->meta_cap) {
    const Answer *a = PeekAnswer(s);
    if (a == nullptr) break;
    if (!Cancelled(s, a->slot) && a->len > 0) {
      if (a->slab != nullptr) {
        // A chunk ends where the slab changes.
        if (slab != nullptr && a->slab != slab) break;
        slab = a->slab;
        uintptr_t at = reinterpret_cast<uintptr_t>(a->rsp);
        if (at < lo) lo = at;
        if (at + a->len > hi) hi = at + a->len;
        in_slab++;
      } else {
        externals++;
      }
    }
    chunk[n++] = *a;
    PopAnswer(s);
  }
  if (n == 0) return false;

  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  napi_create_uint32(env, static_cast<uint32_t>(n), &argv[0]);
  char *base = nullptr;
  if (in_slab > 0) {
    // The slab's Buffer holds a reference of its own: the answers' are
    // dropped at once. Where external buffers are not allowed, a copy of the
    // span the chunk's answers use.
    if (SlabBuffer(s, slab, &argv[1])) {
      base = slab->data;
    } else {
      base = reinterpret_cast<char *>(lo);
      napi_create_buffer_copy(env, hi - lo, base, nullptr, &argv[1]);
    }
    s->slabs.Release(slab, static_cast<int64_t>(in_slab));
  } else {
    napi_get_undefined(env, &argv[1]);
  }
  if (externals > 0) {
    napi_create_array_with_length(env, externals, &argv[2]);
  } else {
    napi_get_undefined(env, &argv[2]);
  }

  uint32_t ext = 0;
  int32_t *m = s->meta;
  int64_t settled = 0;
  for (size_t i = 0; i < n; i++, m += 4) {
    const Answer &a = chunk[i];
    m[0] = a.slot;
    m[1] = a.rc;
    if (Cancelled(s, a.slot)) {
      // Settled when it was abandoned (Cancel).
      s->cancelled[a.slot] = 0;
      FreeAnswer(s, a);
      m[2] = -2;
      m[3] = 0;
    } else {
      settled++;
      if (a.unterminated) {
        FreeAnswer(s, a);
        m[2] = -3;
        m[3] = 0;
      } else if (a.len == 0) {
        FreeAnswer(s, a);
        m[2] = 0;
        m[3] = 0;
      } else if (a.slab != nullptr) {
        // Its reference was dropped above: the chunk's Buffer holds the slab.
        m[2] = static_cast<int32_t>(a.rsp - base);
        m[3] = static_cast<int32_t>(a.len);
      } else {
        napi_value buf;
        // Up to kZeroCopyMin (and small answers no slab took), a Buffer V8
        // allocates and we copy into: young Buffers are reclaimed by
        // scavenges. An external Buffer's bytes push V8 to full GCs instead
        // (8 mark-compacts per 50k answers of 10 KiB, at a quarter of the
        // throughput), which only pays off for large answers.
        if (a.len <= kZeroCopyMin) {
          napi_create_buffer_copy(env, a.len, a.rsp, nullptr, &buf);
          FreeAnswer(s, a);
        } else if (napi_create_external_buffer(env, a.len, a.rsp, FinalizeExternal, nullptr, &buf) != napi_ok) {
          // Where external buffers are not allowed, copy.
          napi_create_buffer_copy(env, a.len, a.rsp, nullptr, &buf);
          FreeAnswer(s, a);
        }
        napi_set_element(env, argv[2], ext, buf);
        m[2] = -1;
        m[3] = static_cast<int32_t>(ext++);
      }
    }
    s->tasks.GiveAnswered(a.task, a.req_cap);
  }
  s->answers += n;
  s->batches++;
  if (s->late_round) s->late_answers += n;
  Settle(s, settled);

  napi_value fn, resource, result;
  napi_get_reference_value(env, s->callback, &fn);
  napi_get_reference_value(env, s->resource, &resource);
  // napi_make_callback opens a callback scope: when it returns, the promise
  // continuations and nextTicks queued by the JS side have run.
  if (napi_make_callback(env, s->actx, resource, fn, 3, argv, &result) != napi_ok) ReportException(env);
  napi_close_handle_scope(env, scope);
  return true;
}

// Bounds of one drain: answers keep arriving while the answers before them
// are delivered (their callers call again, the pollers answer). After this
// many rounds, or once this many answers were delivered (a wake-up's fixed
// cost is long paid for by then), the drain stops and wakes the loop to go
// on, so timers and I/O get their turn in between.
constexpr int kDrainRounds = 8;
constexpr uint64_t kDrainAnswers = 1024;

// One wake-up: delivers every answer there is, then those that arrived
// meanwhile (they did not wake the loop: it is disarmed while it drains),
// until a round finds none. The fixed cost of a wake-up (the loop's turn,
// the eventfd, the callback scope) is then paid once for all of them.
void OnWake(uv_async_t *handle) {
  Sink *s = static_cast<Sink *>(handle->data);
  if (s->callback == nullptr) return;
  Disarm(s);
  s->delivering = true;
  uint64_t first = s->answers;
  for (int round = 1;; round++) {
    BeginRound(s);
    // A wake-up with answers (counted before JS sees them; spurious ones,
    // whose answers an earlier drain took, are not).
    if (s->answers == first && PeekAnswer(s) != nullptr) s->wakeups++;
    while (DeliverChunk(s)) FlushDeferred(s);
    if (FinishDrain(s)) break;
    if (round == kDrainRounds || s->answers - first >= kDrainAnswers) {
      // The answers stay, the wake-up disarmed: the next turn takes them.
      s->drain_yields++;
      uv_async_send(&s->async);
      break;
    }
    // Whatever the next rounds deliver arrived during this wake-up.
    if (s->answers != first) s->late_round = true;
  }
  s->late_round = false;
  s->delivering = false;
  CloseDrainedSlabs(s);
}

// Called by the runtime thread whose answer found the loop armed (idle).
void WakeLoop(Completions *c) {
  Sink *s = static_cast<Sink *>(c);
  pthread_mutex_lock(&s->mu);
  if (!s->closed) uv_async_send(&s->async);
  pthread_mutex_unlock(&s->mu);
}

void CleanupSink(void *arg) {
  Sink *s = static_cast<Sink *>(arg);
  pthread_mutex_lock(&s->mu);
  s->closed = true;
  pthread_mutex_unlock(&s->mu);
  uv_close(reinterpret_cast<uv_handle_t *>(&s->async), nullptr);
  // Runtimes may still hold tasks pointing at this sink: it is not freed.
}

// What a runtime's init writes to stderr, kept to explain a failed init
// (e.g. Python's "ImportError: ...: undefined symbol: PyExc_..." when a shim
// was loaded without global) and written on to the real stderr afterwards,
// so nothing is lost. fd 2 points at a memfd only while init runs.
class StderrCapture {
 public:
  void Start() {
    fflush(stderr);
    fd_ = memfd_create("herald-ffi-init", MFD_CLOEXEC);
    if (fd_ < 0) return;
    saved_ = dup(2);
    if (saved_ < 0 || dup2(fd_, 2) < 0) {
      if (saved_ >= 0) close(saved_);
      close(fd_);
      fd_ = saved_ = -1;
    }
  }

  // Restores stderr, copies what was written to it, returns its tail.
  std::string Stop() {
    if (fd_ < 0) return std::string();
    fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::string tail;
    off_t size = lseek(fd_, 0, SEEK_END);
    char chunk[4096];
    for (off_t at = 0; at < size;) {
      ssize_t n = pread(fd_, chunk, sizeof chunk, at);
      if (n <= 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = write(2, chunk + done, static_cast<size_t>(n - done));
        if (w <= 0) break;
        done += w;
      }
      if (size - at <= static_cast<off_t>(kTail) * 2) tail.append(chunk, static_cast<size_t>(n));
      at += n;
    }
    close(fd_);
    fd_ = -1;
    if (tail.size() > kTail) tail.erase(0, tail.size() - kTail);
    return tail;
  }

 private:
  static constexpr size_t kTail = 4096;
  int fd_ = -1;
  int saved_ = -1;
};

// ---------------------------------------------------------------------------
// JS bindings

Sink *GetSink(const Napi::CallbackInfo &info) { return info.Env().GetInstanceData<Sink>(); }

Runtime *GetRuntime(const Napi::CallbackInfo &info, Sink *s) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= s->runtimes.size()) return nullptr;
  return s->runtimes[id];
}

// setup(onBatch, meta: Int32Array)
Napi::Value Setup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Sink *s = GetSink(info);
  if (!info[0].IsFunction() || !info[1].IsTypedArray()) {
    Napi::TypeError::New(env, "setup(onBatch, Int32Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array meta = info[1].As<Napi::Int32Array>();
  if (meta.TypedArrayType() != napi_int32_array || meta.ElementLength() < 4) {
    Napi::TypeError::New(env, "setup: meta must be an Int32Array of at least 4 elements").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (s->callback) napi_delete_reference(env, s->callback);
  if (s->meta_ref) napi_delete_reference(env, s->meta_ref);
  napi_create_reference(env, info[0], 1, &s->callback);
  napi_create_reference(env, meta, 1, &s->meta_ref);
  s->meta = meta.Data();
  s->meta_cap = meta.ElementLength() / 4;
  s->chunk.resize(s->meta_cap);
  return env.Undefined();
}

// load(path, cfg | null, maxQueue, global, zeroLength, spinUs) -> { ok, id, path } | { ok: false, kind, message, rc }
Napi::Value Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Sink *s = GetSink(info);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool has_cfg = info[1].IsString();
  std::string cfg = has_cfg ? info[1].As<Napi::String>().Utf8Value() : std::string();
  int64_t max_queue = info[2].As<Napi::Number>().Int64Value();
  bool global = info[3].ToBoolean().Value();
  uint8_t zero_length = info[4].ToNumber().Uint32Value() == kZeroLengthEmpty ? kZeroLengthEmpty : kZeroLengthCString;
  int64_t spin_ns = info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() * 1000 : kDefaultSpinNs;

  Napi::Object out = Napi::Object::New(env);
  auto fail = [&](const char *kind, const std::string &message, int rc) {
    out.Set("ok", false);
    out.Set("kind", kind);
    out.Set("message", message);
    out.Set("rc", rc);
    return out;
  };
  auto undefinedSymbol = [](const std::string &text) { return text.find("undefined symbol") != std::string::npos; };

  dlerror();
  void *lib = dlopen(path.c_str(), RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
  if (!lib) {
    const char *err = dlerror();
    return fail("open", err ? err : "dlopen failed", 0);
  }
  std::string real = path;
  struct link_map *lm = nullptr;
  if (dlinfo(lib, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0]) real = lm->l_name;

  auto init = reinterpret_cast<int (*)(char *, void *)>(dlsym(lib, "libffi_init"));
  if (!init) init = reinterpret_cast<int (*)(char *, void *)>(dlsym(lib, "lib_nonblocking_ffi_init"));
  if (!init) {
    // Never dlclose: its constructors ran, and a Go or Python library cannot be
    // unloaded safely.
    return fail("symbol", "exports neither libffi_init nor lib_nonblocking_ffi_init", 0);
  }

  Queue *q = QueueCreate(max_queue, spin_ns);
  q->completions = s;

  char *cfg_copy = has_cfg ? strdup(cfg.c_str()) : nullptr;
  StderrCapture capture;
  capture.Start();
  int rc = init(cfg_copy, q);
  std::string said = capture.Stop();
  free(cfg_copy);
  if (rc != 0) {
    // The runtime may have started pollers before failing: they get NULL.
    QueueFinish(q);
    Napi::Object failed = fail("init", "init returned " + std::to_string(rc), rc);
    failed.Set("stderr", said);
    failed.Set("undefinedSymbol", undefinedSymbol(said));
    return failed;
  }

  Runtime *rt = new Runtime{q, lib, real, false, zero_length, nullptr, nullptr, 0, false, max_queue, 0};
  s->runtimes.push_back(rt);
  out.Set("ok", true);
  out.Set("id", static_cast<uint32_t>(s->runtimes.size() - 1));
  out.Set("path", real);
  return out;
}

// Large requests are copied with non-temporal stores when the requests in
// flight outgrow a core's L2 cache (512 KiB on the EPYC this was measured on):
// a pooled task's request lines were last read by a poller on the other core,
// and once they no longer fit in a cache an ordinary copy fetches each line
// for ownership (from the other core or memory) before writing it, on the JS
// thread; streaming stores write whole lines without fetching them. While
// they fit (4 KiB x 64 in flight), the lines are still close, and streaming
// stores, which go all the way to memory, gain nothing there (bench:ffi's
// main-thread CPU at 4 KiB x 64 was higher in 6 pairs of 6 with them); at
// 4 KiB x 1024 the copy took 680-800 TSC cycles per call instead of
// 1400-1800 (both copies alternated call by call in one process).
constexpr size_t kStreamCopyMin = 1024;
constexpr uint64_t kStreamInFlightBytes = 512 * 1024;

// Copies a request into a task (dst 16-aligned, see Task::req). The caller
// publishes the task after it (the queue's lock, or later for a deferred
// task); the sfence orders the streaming stores before that.
// `in_flight`: calls awaited, this one included.
void CopyRequest(char *dst, const void *src, size_t len, int64_t in_flight) {
#if defined(__x86_64__)
  if (len >= kStreamCopyMin && static_cast<uint64_t>(in_flight) * len >= kStreamInFlightBytes &&
      (reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
    const char *from = static_cast<const char *>(src);
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(from + i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(from + i + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i *>(from + i + 32));
      __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i *>(from + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i *>(dst + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i *>(dst + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i *>(dst + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i *>(dst + i + 48), d);
    }
    if (i < len) memcpy(dst + i, from + i, len - i);
    _mm_sfence();
    return;
  }
#endif
  memcpy(dst, src, len);
}

// The submit bindings are plain N-API callbacks (no node-addon-api
// CallbackInfo: it fetches six arguments and wraps each value), one per
// request type, so the common call (bytes) asks V8 nothing but the three
// arguments and the bytes: callgrind, 4 KiB x 64, about 300 instructions of
// N-API per call fewer.
napi_value ThrowFrom(napi_env env, napi_status (*make)(napi_env, const char *, const char *), const char *message) {
  make(env, nullptr, message);
  return nullptr;
}

napi_value StatusValue(napi_env env, int32_t status) {
  napi_value out;
  napi_create_int32(env, status, &out);
  return out;
}

// Reads (id, slot, req) and the sink; the runtime or nullptr (thrown).
Runtime *SubmitArgs(napi_env env, napi_callback_info info, Sink **sink, int32_t *slot, napi_value *req) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3) {
    napi_throw_type_error(env, nullptr, "submit(id, slot, request)");
    return nullptr;
  }
  Sink *s = nullptr;
  napi_get_instance_data(env, reinterpret_cast<void **>(&s));
  int32_t id = -1;
  *slot = -1;
  if (napi_get_value_int32(env, argv[0], &id) != napi_ok || id < 0 || static_cast<size_t>(id) >= s->runtimes.size() ||
      s->runtimes[id] == nullptr) {
    napi_throw_range_error(env, nullptr, "unknown runtime");
    return nullptr;
  }
  if (napi_get_value_int32(env, argv[1], slot) != napi_ok || *slot < 0) {
    napi_throw_range_error(env, nullptr, "submit: slot must be a non-negative int32");
    return nullptr;
  }
  *sink = s;
  *req = argv[2];
  return s->runtimes[id];
}

// Fills in a task whose request is in place and posts it (or defers it
// while a batch is being delivered). 0 posted, 1 full, 2 finished.
int32_t SubmitTask(Sink *s, Runtime *rt, Task *t, int32_t slot, size_t len) {
  t->req[len] = 0;
  t->req_len = static_cast<int32_t>(len);
  t->header.magic = kTaskMagic;
  t->header.ops = &kOps;
  t->completions = s;
  t->slot = slot;
  t->zero_length = rt->zero_length;
  PostStatus status = kPosted;
  // Only this thread posts and unloads (rt->unloaded is the queue's
  // `finished`); pollers only lower `waiting`.
  if (rt->unloaded) {
    status = kFinished;
  } else if (rt->waiting_bound + rt->deferred >= rt->max_queue) {
    rt->waiting_bound = __atomic_load_n(&rt->queue->waiting, __ATOMIC_RELAXED);
    if (rt->waiting_bound + rt->deferred >= rt->max_queue) status = kFull;
  }
  if (status != kPosted) {
    s->tasks.Give(t);
  } else if (s->delivering) {
    t->next = nullptr;
    if (rt->deferred_tail)
      rt->deferred_tail->next = t;
    else
      rt->deferred_head = t;
    rt->deferred_tail = t;
    rt->deferred++;
    if (!rt->dirty) {
      rt->dirty = true;
      s->dirty.push_back(rt);
    }
  } else {
    Post(rt, t, t, 1);
  }
  if (status == kPosted) Await(s);
  return status;
}

// Copies `len` bytes into a pooled task and submits it.
napi_value SubmitCopy(napi_env env, Sink *s, Runtime *rt, int32_t slot, const void *data, size_t len) {
  if (len > INT32_MAX) return ThrowFrom(env, napi_throw_range_error, "request larger than 2 GiB");
  Task *t = s->tasks.Take(len);
  if (t == nullptr) return ThrowFrom(env, napi_throw_error, "out of memory for a request");
  if (len) CopyRequest(t->req, data, len, s->awaited + 1);
  return StatusValue(env, SubmitTask(s, rt, t, slot, len));
}

// submitBytes(id, slot, req: Uint8Array) -> 0 posted | 1 full | 2 finished
napi_value SubmitBytes(napi_env env, napi_callback_info info) {
  Sink *s;
  int32_t slot;
  napi_value req;
  Runtime *rt = SubmitArgs(env, info, &s, &slot, &req);
  if (rt == nullptr) return nullptr;
  void *data = nullptr;
  size_t len = 0;
  if (napi_get_buffer_info(env, req, &data, &len) != napi_ok)
    return ThrowFrom(env, napi_throw_type_error, "request must be a Buffer or Uint8Array");
  return SubmitCopy(env, s, rt, slot, data, len);
}

// submit(id, slot, req: Uint8Array | string) -> 0 posted | 1 full | 2 finished
napi_value Submit(napi_env env, napi_callback_info info) {
  Sink *s;
  int32_t slot;
  napi_value req;
  Runtime *rt = SubmitArgs(env, info, &s, &slot, &req);
  if (rt == nullptr) return nullptr;
  napi_valuetype type;
  napi_typeof(env, req, &type);
  if (type != napi_string) {
    void *data = nullptr;
    size_t len = 0;
    if (napi_get_buffer_info(env, req, &data, &len) != napi_ok)
      return ThrowFrom(env, napi_throw_type_error, "request must be a string or a Buffer");
    return SubmitCopy(env, s, rt, slot, data, len);
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, req, nullptr, 0, &len);
  if (len > INT32_MAX) return ThrowFrom(env, napi_throw_range_error, "request larger than 2 GiB");
  Task *t = s->tasks.Take(len);
  if (t == nullptr) return ThrowFrom(env, napi_throw_error, "out of memory for a request");
  napi_get_value_string_utf8(env, req, t->req, len + 1, &len);
  return StatusValue(env, SubmitTask(s, rt, t, slot, len));
}

// unload(id) -> slots of the queued calls no poller took (they never ran)
Napi::Value Unload(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Sink *s = GetSink(info);
  Runtime *rt = GetRuntime(info, s);
  Napi::Array slots = Napi::Array::New(env);
  if (!rt || rt->unloaded) return slots;
  rt->unloaded = true;
  Task *rest = QueueFinish(rt->queue);
  if (rt->deferred > 0) {
    rt->deferred_tail->next = rest;
    rest = rt->deferred_head;
    rt->deferred_head = rt->deferred_tail = nullptr;
    rt->deferred = 0;
  }
  uint32_t i = 0;
  int64_t settled = 0;
  while (rest) {
    Task *next = rest->next;
    slots.Set(i++, Napi::Number::New(env, rest->slot));
    if (Cancelled(s, rest->slot))
      s->cancelled[rest->slot] = 0;  // settled when it was abandoned
    else
      settled++;
    s->tasks.Give(rest);
    rest = next;
  }
  Settle(s, settled);
  // The queue stays as a tombstone and the library stays loaded: pollers may
  // still be on their way into task_poll, and a Go runtime cannot stop.
  return slots;
}

// cancel(slot): the call was abandoned; free its answer when it arrives.
// It no longer keeps the loop alive.
Napi::Value Cancel(const Napi::CallbackInfo &info) {
  Sink *s = GetSink(info);
  uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
  if (slot >= s->cancelled.size()) s->cancelled.resize(slot + 1024, 0);
  if (!s->cancelled[slot]) {
    s->cancelled[slot] = 1;
    Settle(s, 1);
  }
  return info.Env().Undefined();
}

// stats(id) -> { queued, idlePollers, maxQueue, finished, spinUs, spins, spinHits } ; stats() -> sink counters
Napi::Value Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Sink *s = GetSink(info);
  Napi::Object out = Napi::Object::New(env);
  if (info.Length() == 0) {
    out.Set("wakeups", static_cast<double>(s->wakeups));
    out.Set("batches", static_cast<double>(s->batches));
    out.Set("answers", static_cast<double>(s->answers));
    out.Set("lateAnswers", static_cast<double>(s->late_answers));
    out.Set("drainYields", static_cast<double>(s->drain_yields));
    out.Set("awaited", static_cast<double>(s->awaited));
    out.Set("completionsWaiting", HasCompletions(s));
    // Answers read from the ring and, when it was full, from the overflow
    // stack (tests check both paths run).
    out.Set("ringAnswers", static_cast<double>(s->ring_answers));
    out.Set("overflowAnswers", static_cast<double>(s->overflow_answers));
    out.Set("openSlabs", static_cast<double>(s->open_slabs.size()));
    // Native allocations so far: flat in steady state (tests check it).
    out.Set("taskAllocations", static_cast<double>(s->tasks.allocations()));
    out.Set("slabAllocations", static_cast<double>(s->slabs.allocations()));
    out.Set("slabsLive", static_cast<double>(s->slabs.live()));
    return out;
  }
  Runtime *rt = GetRuntime(info, s);
  if (!rt) return env.Undefined();
  Queue *q = rt->queue;
  pthread_mutex_lock(&q->mu);
  int64_t queued = q->queued, waiting = q->waiting;
  bool finished = q->finished;
  uint64_t spins = q->spins, spin_hits = q->spin_hits;
  pthread_mutex_unlock(&q->mu);
  out.Set("queued", static_cast<double>(queued + rt->deferred));
  out.Set("idlePollers", static_cast<double>(finished ? 0 : queued - waiting));
  out.Set("maxQueue", static_cast<double>(q->max_queue));
  out.Set("finished", finished);
  // Adaptive spinning of the pollers: the bound in effect (0 on one CPU),
  // spins begun and those that found a task before the bound.
  out.Set("spinUs", static_cast<double>(q->spin_max_ns) / 1000);
  out.Set("spins", static_cast<double>(spins));
  out.Set("spinHits", static_cast<double>(spin_hits));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Node opens addons with RTLD_LOCAL; runtimes resolve the ngx_* symbols
  // from the global scope, so promote this very library before any load.
  Dl_info self;
  void *promoted = nullptr;
  if (dladdr(reinterpret_cast<const void *>(&kOps), &self) && self.dli_fname)
    promoted = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  if (!promoted) {
    const char *err = dlerror();
    Napi::Error::New(env, std::string("nest-herald/ffi: cannot promote the addon to the global symbol scope: ") +
                              (err ? err : "dladdr failed"))
        .ThrowAsJavaScriptException();
    return exports;
  }

  Sink *s = new Sink();
  s->wake = WakeLoop;
  s->reserve = ReserveAnswer;
  s->release = ReleaseAnswer;
  s->env = env;
#ifndef HERALD_FFI_NAPI_ONLY
  s->slabs.drop_store = DropStore;
#endif
  pthread_mutex_init(&s->mu, nullptr);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_async_init(loop, &s->async, OnWake);
  s->async.data = s;
  uv_unref(reinterpret_cast<uv_handle_t *>(&s->async));
  Napi::Object resource = Napi::Object::New(env);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_async_init(env, resource, Napi::String::New(env, "HeraldFfiCompletion"), &s->actx);
  // The sink outlives the environment on purpose (see CleanupSink).
  napi_set_instance_data(env, s, nullptr, nullptr);
  napi_add_env_cleanup_hook(env, CleanupSink, s);

  exports.Set("setup", Napi::Function::New(env, Setup));
  exports.Set("load", Napi::Function::New(env, Load));
  napi_value fn;
  napi_create_function(env, "submit", NAPI_AUTO_LENGTH, Submit, nullptr, &fn);
  exports.Set("submit", fn);
  napi_create_function(env, "submitBytes", NAPI_AUTO_LENGTH, SubmitBytes, nullptr, &fn);
  exports.Set("submitBytes", fn);
  exports.Set("unload", Napi::Function::New(env, Unload));
  exports.Set("cancel", Napi::Function::New(env, Cancel));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("copyMax", Napi::Number::New(env, kCopyMax));
  exports.Set("zeroCopyMin", Napi::Number::New(env, kZeroCopyMin));
  exports.Set("slabSize", Napi::Number::New(env, SlabPool::kSlabSize));
  return exports;
}

}  // namespace

// The host ABI under both name generations.

HERALD_EXPORT void *ngx_http_lua_ffi_task_poll(void *tq) { return AbiTaskPoll(tq); }

HERALD_EXPORT char *ngx_http_lua_ffi_get_req(void *task, int *len) { return AbiGetReq(task, len); }

HERALD_EXPORT void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len) {
  AbiRespond(task, rc, rsp, rsp_len);
}

HERALD_EXPORT void *ngx_http_lua_nonblocking_ffi_task_poll(void *tq) { return ngx_http_lua_ffi_task_poll(tq); }

HERALD_EXPORT char *ngx_http_lua_nonblocking_ffi_get_req(void *task, int *len) {
  return ngx_http_lua_ffi_get_req(task, len);
}

HERALD_EXPORT void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len) {
  ngx_http_lua_ffi_respond(task, rc, rsp, rsp_len);
}

NODE_API_MODULE(herald_ffi, Init)

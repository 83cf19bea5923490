// nest-herald/ffi: the host's memory pools, so that a call in steady state
// allocates nothing natively: tasks (a task carries its request) come from
// per-size free lists (JS thread only, no locks), and answers up to copyMax
// are copied by the answering thread into slabs that are reused once JS
// dropped every Buffer over them (one lock, held for a few pointer moves).
// One of each per Node environment. Free of Node, so the sanitizer harness
// drives them too; host.cc wires the slab's release to the finalizer of the
// batch Buffer.
//
// Why pools: glibc hands freed 64 KiB arenas back to the OS (trim) and the
// next batch faults them in again; at 64-1024 calls in flight that was
// 0.1-0.7 page faults and several microseconds per call.
#ifndef HERALD_FFI_POOLS_H
#define HERALD_FFI_POOLS_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <atomic>
#include <vector>

#include "queue.h"

namespace herald_ffi {
namespace {

// Tasks by request capacity: class i holds requests up to 64 << i bytes
// (the NUL goes in Task::req[1]), 64 B .. 1 MiB; bigger requests are allocated and
// freed each time. At most kTaskPoolBytes stay pooled: a burst of large
// requests does not pin its memory for ever.
class TaskPool {
 public:
  static constexpr int kClasses = 15;
  static constexpr size_t kTaskPoolBytes = 32u << 20;

  // A task with room for `len` request bytes and a NUL; header fields unset.
  Task *Take(size_t len) {
    int c = ClassOf(len);
    if (c < kClasses && !free_[c].empty()) {
      Task *t = free_[c].back();
      free_[c].pop_back();
      pooled_bytes_ -= SizeOf(t->req_cap);
      return t;
    }
    size_t cap = c < kClasses ? size_t{64} << c : len;
    Task *t = static_cast<Task *>(malloc(SizeOf(cap)));
    if (t == nullptr) return nullptr;
    t->req_cap = static_cast<uint32_t>(cap);
    allocations_++;
    return t;
  }

  // A task no runtime has (never polled, or returned by unload): marked dead,
  // so a late respond on it is refused, and back to its class (or freed).
  void Give(Task *t) {
    t->header.magic = kDeadMagic;
    GiveAnswered(t, t->req_cap);
  }

  // An answered task (respond marked it dead already), given back without
  // reading or writing it: its lines were last written by the answering
  // thread, and the JS thread writes them next when it reuses it. The free
  // lists are arrays of pointers, not lists through the tasks, for that.
  void GiveAnswered(Task *t, uint32_t req_cap) {
    int c = ClassOf(req_cap);
    size_t size = SizeOf(req_cap);
    if (c >= kClasses || (size_t{64} << c) != req_cap || pooled_bytes_ + size > kTaskPoolBytes) {
      free(t);
      return;
    }
    free_[c].push_back(t);
    pooled_bytes_ += size;
  }

  // Tasks allocated with malloc so far (a pool hit allocates nothing).
  uint64_t allocations() const { return allocations_; }
  size_t pooled_bytes() const { return pooled_bytes_; }

  ~TaskPool() {
    for (std::vector<Task *> &list : free_)
      for (Task *t : list) free(t);
  }

 private:
  static size_t SizeOf(size_t cap) { return sizeof(Task) + cap; }
  static int ClassOf(size_t len) {
    int c = 0;
    while (c < kClasses && (size_t{64} << c) < len) c++;
    return c;
  }

  std::vector<Task *> free_[kClasses];
  size_t pooled_bytes_ = 0;
  uint64_t allocations_ = 0;
};

// One slab: small answers are copied into it in turn by the threads that
// answer; the JS thread hands out slices of it. `refs`: one per answer not yet
// delivered, one per JS Buffer over it, one while it is the slab being filled.
// At zero it goes back to the pool.
struct Slab {
  char *data;
  size_t used;  // guarded by the pool's lock
  std::atomic<int64_t> refs;
  Slab *next;
  // The JS thread's own (host.cc; the pool never touches them): the handle
  // of the Buffer answers are delivered over while the slab may still get
  // answers (NULL otherwise), and how many Buffers over it JS has not
  // collected yet. refs == js_buffers: no answer will come from it any more.
  // (A line apart from `used` and `refs`, which the answering threads write
  // at every answer.)
  alignas(64) void *js = nullptr;
  int64_t js_buffers = 0;
  // host.cc's handle on the slab's bytes as V8 sees them (one per slab, made
  // the first time JS gets a Buffer over it and kept while the slab lives).
  void *store = nullptr;
};

// Shared by the runtime threads (Reserve) and the JS thread (Release of
// delivered answers and collected Buffers). The lock covers a few pointer
// moves per answer, taken on the answering thread. Aligned to a line of its
// own: the lock is written at every answer, and what lies next to it in the
// sink (the task pool's counters) by the JS thread at every call.
class alignas(64) SlabPool {
 public:
  static constexpr size_t kSlabSize = 512 * 1024;
  // Idle slabs kept for reuse (at most 128 MiB, and never more than were in
  // use at once): past it, a slab whose last reference is dropped is freed.
  // The Buffers over slabs are collected by V8 some time after JS dropped
  // them: at 4 KiB x 1024 in flight ~200 slabs (100 MiB) were in use at once
  // in steady state; freeing and allocating them again cost a page fault per
  // answer copied into a fresh slab.
  static constexpr size_t kKeep = 256;

  SlabPool() { pthread_mutex_init(&mu_, nullptr); }

  // Frees Slab::store when a slab is freed (any thread); set by host.cc.
  void (*drop_store)(void *store) = nullptr;

  // Room for `bytes` (<= kSlabSize) in the slab being filled, and one
  // reference on it (*slab). NULL when memory is exhausted.
  char *Reserve(size_t bytes, Slab **slab) {
    size_t need = (bytes + 15) & ~size_t{15};
    pthread_mutex_lock(&mu_);
    if (current_ == nullptr || kSlabSize - current_->used < need) {
      Slab *old = current_;
      current_ = Fresh();
      if (old != nullptr && old->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) Recycle(old);
      if (current_ == nullptr) {
        pthread_mutex_unlock(&mu_);
        return nullptr;
      }
    }
    char *p = current_->data + current_->used;
    current_->used += need;
    current_->refs.fetch_add(1, std::memory_order_relaxed);
    *slab = current_;
    pthread_mutex_unlock(&mu_);
    return p;
  }

  // Drops `count` references on `slab`.
  void Release(Slab *slab, int64_t count = 1) {
    if (count > 0 && slab->refs.fetch_sub(count, std::memory_order_acq_rel) == count) {
      pthread_mutex_lock(&mu_);
      Recycle(slab);
      pthread_mutex_unlock(&mu_);
    }
  }

  // One more reference (a JS Buffer over the slab).
  void Ref(Slab *slab) { slab->refs.fetch_add(1, std::memory_order_relaxed); }

  // Frees the pooled slabs and the current one if unused (the addon keeps its
  // pool for the life of the process; the sanitizer harness drains it).
  void Drain() {
    pthread_mutex_lock(&mu_);
    if (current_ != nullptr && current_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
      Recycle(current_);
    current_ = nullptr;
    while (free_ != nullptr) {
      Slab *next = free_->next;
      if (free_->store != nullptr && drop_store != nullptr) drop_store(free_->store);
      free(free_->data);
      delete free_;
      live_--;
      free_ = next;
    }
    kept_ = 0;
    pthread_mutex_unlock(&mu_);
  }

  // Slabs allocated with malloc so far; slabs in the pool or in use.
  uint64_t allocations() const { return allocations_.load(std::memory_order_relaxed); }
  size_t live() const { return live_.load(std::memory_order_relaxed); }

 private:
  // Under the lock.
  Slab *Fresh() {
    Slab *slab = free_;
    if (slab != nullptr) {
      free_ = slab->next;
      kept_--;
    } else {
      char *data = static_cast<char *>(malloc(kSlabSize));
      if (data == nullptr) return nullptr;
      slab = new Slab();
      slab->data = data;
      allocations_.fetch_add(1, std::memory_order_relaxed);
      live_.fetch_add(1, std::memory_order_relaxed);
    }
    slab->used = 0;
    slab->refs.store(1, std::memory_order_relaxed);  // the slab being filled
    slab->next = nullptr;
    return slab;
  }

  // Under the lock; `slab` has no reference left.
  void Recycle(Slab *slab) {
    if (kept_ >= kKeep) {
      if (slab->store != nullptr && drop_store != nullptr) drop_store(slab->store);
      free(slab->data);
      delete slab;
      live_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    slab->next = free_;
    free_ = slab;
    kept_++;
  }

  pthread_mutex_t mu_;
  Slab *current_ = nullptr;
  Slab *free_ = nullptr;
  size_t kept_ = 0;
  std::atomic<size_t> live_{0};
  std::atomic<uint64_t> allocations_{0};
};

}  // namespace
}  // namespace herald_ffi

#endif  // HERALD_FFI_POOLS_H

// nest-herald/ffi: the host's memory pools, so that a call in steady state
// allocates nothing natively: tasks (a task carries its request) come from
// per-size free lists, and answers up to copyMax are copied into slabs that
// are reused once JS dropped every batch Buffer over them. Both are used by
// the JS thread only (one pool per Node environment): no locks. Free of Node,
// so the sanitizer harness drives them too; host.cc wires the slab's release
// to the finalizer of the batch Buffer.
//
// Why pools: glibc hands freed 64 KiB arenas back to the OS (trim) and the
// next batch faults them in again; at 64-1024 calls in flight that was
// 0.1-0.7 page faults and several microseconds per call.
#ifndef HERALD_FFI_POOLS_H
#define HERALD_FFI_POOLS_H

#include <stdint.h>
#include <stdlib.h>

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
    if (c < kClasses && free_[c] != nullptr) {
      Task *t = free_[c];
      free_[c] = t->next;
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

  // Back to its class (or freed); the magic marks it dead either way, so a
  // late respond on it is refused.
  void Give(Task *t) {
    t->header.magic = kDeadMagic;
    int c = ClassOf(t->req_cap);
    size_t size = SizeOf(t->req_cap);
    if (c >= kClasses || (size_t{64} << c) != t->req_cap ||
        pooled_bytes_ + size > kTaskPoolBytes) {
      free(t);
      return;
    }
    t->next = free_[c];
    free_[c] = t;
    pooled_bytes_ += size;
  }

  // Tasks allocated with malloc so far (a pool hit allocates nothing).
  uint64_t allocations() const { return allocations_; }
  size_t pooled_bytes() const { return pooled_bytes_; }

  ~TaskPool() {
    for (Task *&head : free_) {
      while (head) {
        Task *next = head->next;
        free(head);
        head = next;
      }
    }
  }

 private:
  static size_t SizeOf(size_t cap) { return sizeof(Task) + cap; }
  static int ClassOf(size_t len) {
    int c = 0;
    while (c < kClasses && (size_t{64} << c) < len) c++;
    return c;
  }

  Task *free_[kClasses] = {};
  size_t pooled_bytes_ = 0;
  uint64_t allocations_ = 0;
};

// One slab: batches of copied answers are carved from it in turn; each
// batch Buffer holds a reference, and the slab is reused when the last one is
// collected and it is no longer the slab being filled.
struct Slab {
  char *data;
  size_t used;
  int64_t refs;
  Slab *next;
};

class SlabPool {
 public:
  // A batch is at most kArenaMax bytes (host.cc); four fit in a slab.
  static constexpr size_t kSlabSize = 256 * 1024;
  // Slabs kept for reuse beyond those in use (64 MiB): past it, a slab whose
  // last Buffer is collected is freed.
  static constexpr size_t kKeep = 256;

  // `bytes` (<= kSlabSize) for one batch; the caller holds one reference on
  // *slab until Release.
  char *Take(size_t bytes, Slab **slab) {
    size_t need = (bytes + 15) & ~size_t{15};
    if (current_ == nullptr || kSlabSize - current_->used < need) {
      Slab *old = current_;
      current_ = nullptr;
      if (old != nullptr && old->refs == 0) Recycle(old);
      current_ = Fresh();
      if (current_ == nullptr) return nullptr;
    }
    char *p = current_->data + current_->used;
    current_->used += need;
    current_->refs++;
    *slab = current_;
    return p;
  }

  // One batch Buffer over `slab` is gone.
  void Release(Slab *slab) {
    if (--slab->refs == 0 && slab != current_) Recycle(slab);
  }

  // Frees the pooled slabs and the current one if unused (the addon keeps its
  // pool for the life of the process; the sanitizer harness drains it).
  void Drain() {
    if (current_ != nullptr && current_->refs == 0) {
      Recycle(current_);
      current_ = nullptr;
    }
    while (free_ != nullptr) {
      Slab *next = free_->next;
      free(free_->data);
      free(free_);
      live_--;
      free_ = next;
    }
    kept_ = 0;
  }

  // Slabs allocated with malloc so far; slabs in the pool or in use.
  uint64_t allocations() const { return allocations_; }
  size_t live() const { return live_; }

 private:
  Slab *Fresh() {
    Slab *slab = free_;
    if (slab != nullptr) {
      free_ = slab->next;
      kept_--;
    } else {
      slab = static_cast<Slab *>(malloc(sizeof(Slab)));
      if (slab == nullptr) return nullptr;
      slab->data = static_cast<char *>(malloc(kSlabSize));
      if (slab->data == nullptr) {
        free(slab);
        return nullptr;
      }
      allocations_++;
      live_++;
    }
    slab->used = 0;
    slab->refs = 0;
    slab->next = nullptr;
    return slab;
  }

  void Recycle(Slab *slab) {
    if (kept_ >= kKeep) {
      free(slab->data);
      free(slab);
      live_--;
      return;
    }
    slab->next = free_;
    free_ = slab;
    kept_++;
  }

  Slab *current_ = nullptr;
  Slab *free_ = nullptr;
  size_t kept_ = 0;
  size_t live_ = 0;
  uint64_t allocations_ = 0;
};

}  // namespace
}  // namespace herald_ffi

#endif  // HERALD_FFI_POOLS_H

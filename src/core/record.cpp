// A tape's records live in chunks that never move; the chunks of destroyed tapes wait, per
// thread, for the next tape.
#include "core/record.hpp"

#include <cstddef>
#include <new>
#include <vector>

#include "core/node_pool.hpp"

namespace tapegrad::detail {

namespace {
// Record chunks of destroyed tapes, reused by the next ones: a training loop makes one tape
// per step, and this keeps it from allocating its records anew every time. At most 4 MiB
// are kept per thread (tens of thousands of ops, far more than a training step of the
// models tapegrad is for), so that one tape of millions of ops does not pin hundreds of
// megabytes for the thread's life. A plain pointer, still readable while the thread's other
// thread_locals are torn down.
constexpr std::size_t kChunkBytes = RecordArena::kChunkRecords * sizeof(Record);
constexpr std::size_t kMaxSpareChunks = (std::size_t{4} << 20) / kChunkBytes;
thread_local std::vector<void*>* spare_chunks = nullptr;
thread_local bool spare_chunks_finished = false;
struct SpareChunksOwner {
  ~SpareChunksOwner() {
    if (spare_chunks != nullptr) {
      for (void* chunk : *spare_chunks) ::operator delete(chunk);
      delete spare_chunks;
    }
    spare_chunks = nullptr;
    spare_chunks_finished = true;
  }
};
std::vector<void*>* spare_chunk_list() {
  if (!TAPEGRAD_RECYCLE_NODES) return nullptr;  // AddressSanitizer sees every free
  if (spare_chunks == nullptr && !spare_chunks_finished) {
    static thread_local SpareChunksOwner owner;
    (void)&owner;  // constructs it, so that it frees the chunks at thread exit
    spare_chunks = new std::vector<void*>();
    spare_chunks->reserve(kMaxSpareChunks);
  }
  return spare_chunks;
}
}  // namespace

void RecordArena::add_chunk() {
  auto* spare = spare_chunk_list();
  void* chunk = nullptr;
  if (spare != nullptr && !spare->empty()) {
    chunk = spare->back();
    spare->pop_back();
  } else {
    chunk = ::operator new(kChunkBytes);
  }
  try {
    chunks_.push_back(static_cast<Record*>(chunk));
  } catch (...) {
    ::operator delete(chunk);
    throw;
  }
}

void RecordArena::clear() {
  for (std::size_t i = 0; i < size_; ++i) (*this)[i].~Record();
  size_ = 0;
}

RecordArena::~RecordArena() {
  clear();
  auto* spare = spare_chunk_list();
  for (void* chunk : chunks_) {
    if (spare != nullptr && spare->size() < kMaxSpareChunks) {
      spare->push_back(chunk);
    } else {
      ::operator delete(chunk);
    }
  }
}

}  // namespace tapegrad::detail

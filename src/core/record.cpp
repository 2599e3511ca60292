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
// megabytes for the thread's life.
constexpr std::size_t kChunkBytes = RecordArena::kChunkRecords * sizeof(Record);
using ChunkCache = BlockCache<kChunkBytes, (std::size_t{4} << 20) / kChunkBytes>;
}  // namespace

void RecordArena::add_chunk() {
  void* chunk = ChunkCache::take();
  try {
    chunks_.push_back(static_cast<Record*>(chunk));
  } catch (...) {
    ChunkCache::give(chunk);
    throw;
  }
}

void RecordArena::clear() {
  for (std::size_t i = 0; i < size_; ++i) (*this)[i].~Record();
  size_ = 0;
}

RecordArena::~RecordArena() {
  clear();
  for (void* chunk : chunks_) ChunkCache::give(chunk);
}

}  // namespace tapegrad::detail

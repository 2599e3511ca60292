// A tape's records live in chunks that never move; the chunks of released records wait for
// the tape's next records, and those of destroyed tapes, per thread, for the next tape.
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

void RecordArena::release() {
  if (held_ == 0) return;
  // The arena is emptied before any record dies: a record's destruction may run user code (a
  // hook's captured state) that records on this tape again.
  std::vector<Record*> chunks;
  chunks.swap(chunks_);
  const std::size_t held = held_;
  held_ = 0;
  first_ += held;
  for (std::size_t p = 0; p < held; ++p) chunks[p >> kChunkShift][p & kChunkMask].~Record();
  if (chunks_.empty()) chunks_.swap(chunks);  // kept for the next records
  for (void* chunk : chunks) ChunkCache::give(chunk);
  while (chunks_.size() > (std::size_t{4} << 20) / kChunkBytes) {
    ChunkCache::give(chunks_.back());
    chunks_.pop_back();
  }
}

RecordArena::~RecordArena() {
  release();
  for (void* chunk : chunks_) ChunkCache::give(chunk);
}

}  // namespace tapegrad::detail

// What a tape stores: one Record per recorded op, kept in a RecordArena.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tapegrad/error.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// The plain values an op's backward needs besides its inputs and output. The common ones
/// (a number, an axis) live inline; a shape or an index list, which few ops need, lives
/// behind a pointer, so that a record stays small (a long chain of ops is a long array).
class Attrs {
 public:
  double scalar = 0;
  std::ptrdiff_t axis = 0;

  /// A shape the backward restores or reduces to.
  Shape& shape() { return extra().shape; }
  const Shape& shape() const { return extra_->shape; }
  /// Axes, a permutation or row indices.
  std::vector<std::size_t>& ints() { return extra().ints; }
  const std::vector<std::size_t>& ints() const { return extra_->ints; }
  /// Anything else a rule needs (a custom op's functions), kept alive by the record.
  std::shared_ptr<const void>& payload() { return extra().payload; }
  const std::shared_ptr<const void>& payload() const { return extra_->payload; }

 private:
  struct Extra {
    Shape shape;
    std::vector<std::size_t> ints;
    std::shared_ptr<const void> payload;
  };
  Extra& extra() {
    if (!extra_) extra_ = std::make_shared<Extra>();
    return *extra_;
  }
  std::shared_ptr<Extra> extra_;  // shared, not unique: records are copied under create_graph
};

struct Record;
struct Sweep;
using Dispatch = void (*)(Record&, Sweep&);
using AnyFunction = void (*)();

/// One recorded operation. The tape owns its records; a record owns its nodes (never the
/// other way round), so dropping the tape frees the whole graph without recursion.
struct Record {
  Dispatch dispatch = nullptr;  // calls `rule` with the element type restored
  AnyFunction rule = nullptr;
  const char* op = "";
  std::shared_ptr<NodeBase> output;
  std::array<std::shared_ptr<NodeBase>, 2> first_inputs;
  std::array<std::uint64_t, 2> first_versions{};
  std::uint64_t output_version = 0;
  std::uint32_t input_count = 0;
  /// Set when a backward() without retain_graph has swept this record: another sweep
  /// through it would add the same gradient again, so it throws instead.
  bool used_up = false;
  struct MoreInputs {
    std::vector<std::shared_ptr<NodeBase>> nodes;
    std::vector<std::uint64_t> versions;
  };
  std::shared_ptr<MoreInputs> more_inputs;  // only for ops of 3+ inputs (concat)
  Attrs attrs;

  const std::shared_ptr<NodeBase>& input(std::size_t i) const {
    return i < 2 ? first_inputs[i] : more_inputs->nodes[i - 2];
  }
  std::uint64_t recorded_version(std::size_t i) const {
    return i < 2 ? first_versions[i] : more_inputs->versions[i - 2];
  }
};

/// The records of one tape, in recording order, in chunks that never move: appending never
/// copies the records already there (a tape of 10^6 ops used to regrow and copy its array
/// twenty times), and a reference to a record stays valid while the tape lives. Chunks freed
/// by a tape wait, per thread and up to 4 MiB, for the next tape.
class RecordArena {
 public:
  RecordArena() = default;
  ~RecordArena();
  RecordArena(const RecordArena&) = delete;
  RecordArena& operator=(const RecordArena&) = delete;

  std::size_t size() const { return size_; }
  Record& operator[](std::size_t i) { return chunks_[i >> kChunkShift][i & kChunkMask]; }
  const Record& operator[](std::size_t i) const { return chunks_[i >> kChunkShift][i & kChunkMask]; }
  /// A new default record at the end.
  Record& emplace_back() {
    if ((size_ & kChunkMask) == 0 && (size_ >> kChunkShift) == chunks_.size()) add_chunk();
    Record* slot = &chunks_[size_ >> kChunkShift][size_ & kChunkMask];
    new (slot) Record();
    ++size_;
    return *slot;
  }
  /// Destroys the records, first to last (each frees its own nodes: no recursion).
  void clear();

  static constexpr std::size_t kChunkShift = 8;
  static constexpr std::size_t kChunkRecords = std::size_t{1} << kChunkShift;

 private:
  static constexpr std::size_t kChunkMask = kChunkRecords - 1;
  void add_chunk();
  std::vector<Record*> chunks_;  // raw storage for kChunkRecords records each
  std::size_t size_ = 0;
};

}  // namespace tapegrad::detail

// What a tape stores: one Record per recorded op, kept in a RecordArena.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/error.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// The plain values an op's kernels and rule need besides its inputs (a scale, an axis, a
/// shape), as the op's own typed struct (`Op::Attrs`, see ops/op.hpp). A small trivially
/// copyable struct lives inline, so a record stays small (a long chain of ops is a long
/// array); a larger one (a shape, an index list) lives behind a shared pointer, shared and
/// not unique because records are copied under create_graph.
class AttrBox {
 public:
  static constexpr std::size_t kInlineBytes = 16;
  template <class A>
  static constexpr bool kInline = std::is_trivially_copyable_v<A> && sizeof(A) <= kInlineBytes &&
                                  alignof(A) <= 8;

  template <class A>
  void put(A value) {
    if constexpr (kInline<A>) {
      new (inline_) A(std::move(value));  // trivially copyable: nothing to destroy later
    } else {
      heap_ = std::make_shared<const A>(std::move(value));
    }
  }
  /// The struct given to put(); A must be the same type (each op reads back its own Attrs).
  template <class A>
  const A& get() const {
    if constexpr (kInline<A>) {
      return *std::launder(reinterpret_cast<const A*>(inline_));
    } else {
      return *static_cast<const A*>(heap_.get());
    }
  }
  /// The inline bytes (a small trivially copyable Attrs): what an elementwise kernel that runs
  /// without its record (OpEntry::elementwise) is given, copied.
  const unsigned char* inline_bytes() const { return inline_; }
  /// Keeps `state` alive with the record (a custom op's functions and name).
  void share(std::shared_ptr<const void> state) { heap_ = std::move(state); }
  const std::shared_ptr<const void>& shared() const { return heap_; }

 private:
  alignas(8) unsigned char inline_[kInlineBytes] = {};
  std::shared_ptr<const void> heap_;
};

struct Record;
struct Sweep;

/// How an input of an elementwise kernel (OpEntry::elementwise) lines up with the result.
enum class Spread : unsigned char {
  kFull,    // as many elements as the result, in its order
  kNumber,  // one element, read for every result element
  kRow,     // one row (the result's last extent), read for every row: a bias
};

/// An elementwise op's kernel on raw buffers of its element type: y[k] = f(a[k], b[k]) over
/// the n elements of y (rows of `row`), each input spread over y as its Spread says (the
/// pairs (full, full), (full, number), (number, full), (full, row), (row, full)); `attrs`
/// holds the bytes of the op's inline Attrs. A one-input op reads a only, all of it.
using ElementwiseKernel = void (*)(const void* a, const void* b, void* y, std::size_t n,
                                   std::size_t row, Spread spread_a, Spread spread_b,
                                   const unsigned char* attrs);

/// What the engine knows of an op kind for one element type: its name, its backward (the
/// chain rule through one record) and its forward kernel, which recomputes a record's output
/// in place from its inputs' current values (the kernel the forward pass ran). One static
/// entry per op and type, made by ops/op.hpp from the op's block.
struct OpEntry {
  const char* name;
  void (*backward)(Record&, Sweep&);
  /// Recomputes the record's output in place. Precondition: every input has the shape it
  /// had when the op was recorded (compile() checks its leaves before each run).
  void (*forward)(Record&);
  /// False for a record whose output is not a function of its inputs' values (the
  /// gradient a once_differentiable custom op computed): compile() refuses it.
  bool replayable = true;
  /// For an elementwise op (ops/op.hpp's Unary and Binary, with inline Attrs or none): its
  /// kernel on raw buffers, null for every other op. compile() runs it without the record.
  ElementwiseKernel elementwise = nullptr;
  /// For an op whose block has `raw` (matmul, the sums, broadcast_to): when the record's
  /// shapes allow it, a kernel that recomputes the output from its inputs' raw buffers (the
  /// ElementwiseKernel signature; it reads only a, b, y and `attrs`, which holds the extents
  /// this function packs into `params`, at most AttrBox::kInlineBytes), so that compile()
  /// runs the op without its record; null where the shapes do not allow it.
  ElementwiseKernel (*raw)(const Record&, unsigned char* params) = nullptr;
  /// For an op whose block has `raw_add` (matmul): into += alpha * y, y computed from raw
  /// input buffers with the extents `raw` packed, without writing y. compile_sgd_step folds
  /// a weight update into the product that makes the weight's gradient with it.
  void (*raw_add)(const void* a, const void* b, void* into, const unsigned char* params,
                  double alpha) = nullptr;
};

/// One recorded operation. The tape owns its records; a record owns its nodes (never the
/// other way round), so dropping the tape frees the whole graph without recursion.
struct Record {
  const OpEntry* entry = nullptr;
  const char* op = "";  // the entry's name, or a custom op's own
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
  AttrBox attrs;

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
///
/// Indices are the records' positions since the arena was made: release() destroys the
/// records held and keeps their chunks for the next ones, which get the following indices,
/// so that a node of a released record (whose index is below first()) is never taken for
/// the record that now sits in its chunk.
class RecordArena {
 public:
  RecordArena() = default;
  ~RecordArena();
  RecordArena(const RecordArena&) = delete;
  RecordArena& operator=(const RecordArena&) = delete;

  /// One past the index of the last record (the records ever appended, since restart()).
  std::size_t size() const { return first_ + held_; }
  /// The index of the first record held: those below were released.
  std::size_t first() const { return first_; }
  /// The number of records held.
  std::size_t held() const { return held_; }
  /// The record at index i, first() <= i < size().
  Record& operator[](std::size_t i) { return at(i - first_); }
  const Record& operator[](std::size_t i) const {
    const std::size_t p = i - first_;
    return chunks_[p >> kChunkShift][p & kChunkMask];
  }
  /// A new default record at the end.
  Record& emplace_back() {
    if ((held_ & kChunkMask) == 0 && (held_ >> kChunkShift) == chunks_.size()) add_chunk();
    Record* slot = &at(held_);
    new (slot) Record();
    ++held_;
    return *slot;
  }
  /// Destroys the records held, first to last (each frees its own nodes: no recursion); the
  /// next record gets index size(). Keeps up to 4 MiB of chunks for the next records.
  void release();
  /// Indices start again from 0: only when no node refers to this arena's records by index
  /// any more (its tape has taken a new serial). Nothing may be held.
  void restart() { first_ = 0; }

  static constexpr std::size_t kChunkShift = 8;
  static constexpr std::size_t kChunkRecords = std::size_t{1} << kChunkShift;

 private:
  static constexpr std::size_t kChunkMask = kChunkRecords - 1;
  Record& at(std::size_t p) { return chunks_[p >> kChunkShift][p & kChunkMask]; }
  void add_chunk();
  std::vector<Record*> chunks_;  // raw storage for kChunkRecords records each
  std::size_t first_ = 0;        // the index of the record in chunks_[0][0]
  std::size_t held_ = 0;
};

}  // namespace tapegrad::detail

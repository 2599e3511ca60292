// A tape's state behind tapegrad::Tape, and the calling thread's stack of live tapes.
#pragma once

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "core/record.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::detail {

struct TapeImpl {
  Tape* owner = nullptr;
  std::thread::id thread;
  std::uint64_t serial = 0;
  RecordArena records;
  /// How many of the records held a backward() without retain_graph has used up: when all,
  /// no sweep can use them again (note_spent_records).
  std::size_t used_up = 0;
  /// Set at the end of a backward() when no record held can be swept again: the next op
  /// recorded on the tape first releases them (release_records), so that a Tape kept around
  /// a training loop does not grow, while graph_dot and the like still see the records right
  /// after the backward().
  bool spent = false;
  /// Reverse sweeps going through this tape now, and a release of its records. While there
  /// is one, no record is released, and a Tape destroyed (by a hook, or a custom op's
  /// backward) leaves this state to the last of them (`orphaned`), which frees it at its end.
  std::uint32_t in_use = 0;
  bool orphaned = false;
  /// The records counted before the arena's indices last started again (Tape::size()).
  std::uint64_t restarted_after = 0;
  /// The full check of note_spent_records runs again only once this many records are held:
  /// a tape that keeps growing is not walked after every backward().
  std::size_t next_spent_check = 0;
};

/// At the end of a backward() without retain_graph through `tape` (no other sweep going
/// through it): sets `spent` if none of its records can be swept again, that is if each is
/// used up or makes a result that nothing but the tape's own records holds.
void note_spent_records(TapeImpl& tape);

/// Releases the records of a spent tape (in_use == 0) and the values only they hold. A node
/// of a released record keeps its value; a sweep that reaches it throws TapeError (its index
/// is below the arena's first()). Frees `tape` if a destructor run meanwhile destroyed its
/// Tape.
void release_records(TapeImpl& tape);

/// Set on the calling thread while compile() records f: every op is recorded, even one
/// whose inputs need no gradient or that runs under a NoGradGuard, so that a compiled step
/// recomputes everything that depends on the values it reads.
extern thread_local bool recording_everything;
/// Tensors made from values (the public constructors) while recording_everything is set: a
/// custom op's backward that makes one would have it frozen in a compiled step.
extern thread_local std::uint64_t constants_made;

/// The live tapes of the calling thread, outermost first.
std::vector<TapeImpl*>& tape_stack();
inline TapeImpl* active_tape() {
  auto& stack = tape_stack();
  return stack.empty() ? nullptr : stack.back();
}

/// Why the tape with this serial is not among the calling thread's (destroyed, or alive on
/// another thread), for the errors of backward().
std::string gone_tape_reason(std::uint64_t serial);

}  // namespace tapegrad::detail

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
};

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

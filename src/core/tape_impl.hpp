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
  /// Set by compile(): record every op, even one whose inputs need no gradient, so that a
  /// compiled step recomputes everything that depends on the values it reads.
  bool record_all = false;
};

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

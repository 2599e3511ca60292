// The tape's life cycle, the per-thread stack of live tapes and the recording modes
// (grad mode, anomaly mode).
#include "tapegrad/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/anomaly.hpp"
#include "core/recording.hpp"
#include "core/tape_impl.hpp"
#include "tapegrad/error.hpp"

namespace tapegrad {

namespace detail {

thread_local bool anomaly_checks = false;
thread_local bool recording_everything = false;
thread_local std::uint64_t constants_made = 0;

void report_forward_anomaly(const char* op, const std::string& shapes) {
  throw TapeError(std::string("anomaly mode: '") + op +
                  "' made NaN or Inf from finite inputs of shape(s) " + shapes +
                  " (this is the forward op that created the first non-finite value)");
}

namespace {
thread_local bool recording_enabled = true;
std::atomic<std::uint64_t> next_tape_serial{1};

// The live tapes of all threads, so that an error can say whether a tensor's tape is gone or
// alive on another thread. Touched twice per Tape (an uncontended lock), read on errors.
struct LiveTapes {
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, std::thread::id>> tapes;
};
LiveTapes& live_tapes() {
  static LiveTapes* registry = new LiveTapes;  // never destroyed: tapes may die at exit
  return *registry;
}

}  // namespace

std::string gone_tape_reason(std::uint64_t serial) {
  auto& live = live_tapes();
  std::lock_guard<std::mutex> lock(live.mutex);
  for (const auto& [s, thread] : live.tapes) {
    if (s == serial && thread != std::this_thread::get_id()) {
      return "was recorded on a Tape that is alive on another thread; a tensor can only be "
             "differentiated on the thread that recorded it (run backward() there)";
    }
  }
  return "was recorded on a Tape that has been destroyed; keep that Tape alive until "
         "backward() returns";
}

std::vector<TapeImpl*>& tape_stack() {
  thread_local std::vector<TapeImpl*> stack;
  return stack;
}

namespace {

// Whether a backward() could still reach a record of `tape`: one not used up whose result
// something besides the tape's own records holds (a Tensor, a kept gradient, another tape's
// record). A record reached only through used-up records is not needed: a sweep stops at the
// first of those with a TapeError.
bool still_needed(const TapeImpl& tape) {
  const RecordArena& records = tape.records;
  const std::size_t first = records.first(), end = records.size();
  std::vector<std::uint32_t> uses(end - first, 0);  // references from the records' inputs
  for (std::size_t i = first; i < end; ++i) {
    const Record& record = records[i];
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const NodeBase& input = *record.input(k);
      if (input.tape_serial == tape.serial && input.record_index >= first &&
          input.record_index < end && records[input.record_index].output.get() == &input) {
        ++uses[input.record_index - first];
      }
    }
  }
  for (std::size_t i = first; i < end; ++i) {
    const Record& record = records[i];
    const auto holders = static_cast<std::size_t>(record.output.use_count());
    if (!record.used_up && holders > 1 + uses[i - first]) return true;
  }
  return false;
}

// A tape's indices start again once this many records were recorded since they last did,
// under a new serial, so that a node's 32-bit record_index never wraps around.
constexpr std::size_t kRestartIndicesAt = std::size_t{1} << 31;

}  // namespace

void note_spent_records(TapeImpl& tape) {
  const std::size_t held = tape.records.held();
  if (held == 0 || tape.used_up == held) {
    tape.spent = held != 0;
    return;
  }
  if (held < tape.next_spent_check) return;
  bool needed = true;
  try {
    needed = still_needed(tape);
  } catch (const std::bad_alloc&) {  // then the records stay
  }
  tape.spent = !needed;
  if (needed) tape.next_spent_check = 2 * held;
}

void release_records(TapeImpl& tape) {
  tape.spent = false;
  tape.used_up = 0;
  tape.next_spent_check = 0;
  ++tape.in_use;  // a record's destructor may destroy the Tape: then it is freed below
  tape.records.release();
  --tape.in_use;
  if (tape.orphaned) {
    if (tape.in_use == 0) delete &tape;
    return;
  }
  if (tape.records.size() < kRestartIndicesAt || tape.records.held() != 0) return;
  // Nodes of the old indices keep the old serial: a sweep takes them for a destroyed tape's.
  const std::uint64_t old = tape.serial;
  tape.serial = next_tape_serial.fetch_add(1, std::memory_order_relaxed);
  {
    auto& live = live_tapes();
    std::lock_guard<std::mutex> lock(live.mutex);
    for (auto& entry : live.tapes) {
      if (entry.first == old) entry.first = tape.serial;
    }
  }
  tape.restarted_after += tape.records.size();
  tape.records.restart();
}

GradModeGuard::GradModeGuard(bool enabled) : previous_(recording_enabled) {
  recording_enabled = enabled;
}
GradModeGuard::~GradModeGuard() { recording_enabled = previous_; }

}  // namespace detail

Tape::Tape() : impl_(std::make_unique<detail::TapeImpl>()) {
  impl_->owner = this;
  impl_->thread = std::this_thread::get_id();
  impl_->serial = detail::next_tape_serial.fetch_add(1, std::memory_order_relaxed);
  {
    auto& live = detail::live_tapes();
    std::lock_guard<std::mutex> lock(live.mutex);
    live.tapes.emplace_back(impl_->serial, impl_->thread);
  }
  detail::tape_stack().push_back(impl_.get());
}

Tape::~Tape() {
  if (impl_->thread != std::this_thread::get_id()) {
    // Its thread's stack would keep a dangling pointer: refuse loudly rather than corrupt.
    std::fputs("tapegrad: a Tape must be destroyed on the thread that created it\n", stderr);
    std::abort();
  }
  auto& stack = detail::tape_stack();
  stack.erase(std::remove(stack.begin(), stack.end(), impl_.get()), stack.end());
  {
    auto& live = detail::live_tapes();
    std::lock_guard<std::mutex> lock(live.mutex);
    const auto it =
        std::find(live.tapes.begin(), live.tapes.end(), std::pair{impl_->serial, impl_->thread});
    live.tapes.erase(it);
  }
  if (impl_->in_use > 0) {
    // Destroyed by a hook or a custom op's backward during a sweep through it: the sweep
    // still walks the records, and frees them when it ends.
    impl_->owner = nullptr;
    impl_->orphaned = true;
    impl_.release();
    return;
  }
  impl_->records.release();  // frees the intermediates, one record at a time
}

void Tape::check_owner(const char* function) const {
  if (impl_->thread != std::this_thread::get_id()) {
    throw TapeError(std::string("Tape::") + function +
                    ": called on another thread than the one that made the tape, which records "
                    "on it; a Tape belongs to its thread");
  }
}

std::size_t Tape::size() const {
  check_owner("size");
  return static_cast<std::size_t>(impl_->restarted_after) + impl_->records.size();
}
std::uint64_t Tape::serial() const {
  check_owner("serial");
  return impl_->serial;
}

Tape* Tape::active() {
  auto* impl = detail::active_tape();
  return impl == nullptr ? nullptr : impl->owner;
}

bool grad_enabled() { return detail::recording_enabled; }

bool anomaly_mode() { return detail::anomaly_checks; }

AnomalyModeGuard::AnomalyModeGuard(bool on) : previous_(detail::anomaly_checks) {
  detail::anomaly_checks = on;
}
AnomalyModeGuard::~AnomalyModeGuard() { detail::anomaly_checks = previous_; }

NoGradGuard::NoGradGuard() : previous_(detail::recording_enabled) {
  detail::recording_enabled = false;
}
NoGradGuard::~NoGradGuard() { detail::recording_enabled = previous_; }

}  // namespace tapegrad

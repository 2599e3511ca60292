// The tape's life cycle, the per-thread stack of live tapes and the recording modes
// (grad mode, anomaly mode).
#include "tapegrad/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/anomaly.hpp"
#include "core/recording.hpp"
#include "core/tape_impl.hpp"

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
  impl_->records.clear();  // frees the intermediates, one record at a time
}

std::size_t Tape::size() const { return impl_->records.size(); }
std::uint64_t Tape::serial() const { return impl_->serial; }

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

// libFuzzer target: parse_npz must accept or refuse with IoError, never crash.
#include <cstddef>
#include <cstdint>

#include "tapegrad/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    for (const auto& entry : tapegrad::io::parse_npz(data, size, "fuzz.npz")) {
      (void)entry.second.to<float>();
    }
  } catch (const tapegrad::io::IoError&) {
  }
  return 0;
}

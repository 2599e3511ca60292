// libFuzzer target: parse_npy must accept or refuse with IoError, never crash.
#include <cstddef>
#include <cstdint>

#include "tapegrad/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto array = tapegrad::io::parse_npy(data, size, "fuzz.npy");
    (void)array.to<double>();
  } catch (const tapegrad::io::IoError&) {
  }
  return 0;
}

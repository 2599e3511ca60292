// libFuzzer target: read_idx (plain and gzip) must accept or refuse with IoError. Built three
// times, once per element type: fuzz_idx (float), fuzz_idx_int32 and fuzz_idx_uint8, whose
// conversions refuse values the integer type cannot hold.
#include <cstddef>
#include <cstdint>

#include "file_input.hpp"
#include "tapegrad/io/idx.hpp"
#include "tapegrad/io/npy.hpp"

#ifndef TAPEGRAD_FUZZ_IDX_ELEMENT
#define TAPEGRAD_FUZZ_IDX_ELEMENT float
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz_input_file(data, size, ".idx");
  try {
    (void)tapegrad::io::read_idx<TAPEGRAD_FUZZ_IDX_ELEMENT>(path);
  } catch (const tapegrad::io::IoError&) {
  }
  return 0;
}

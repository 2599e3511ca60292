// libFuzzer target: read_idx (plain and gzip) must accept or refuse with IoError.
#include <cstddef>
#include <cstdint>

#include "file_input.hpp"
#include "tapegrad/io/idx.hpp"
#include "tapegrad/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz_input_file(data, size, ".idx");
  try {
    (void)tapegrad::io::read_idx<float>(path);
  } catch (const tapegrad::io::IoError&) {
  }
  return 0;
}

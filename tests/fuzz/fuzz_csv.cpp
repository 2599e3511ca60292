// libFuzzer target: read_csv must accept or refuse with IoError.
#include <cstddef>
#include <cstdint>

#include "file_input.hpp"
#include "tapegrad/io/csv.hpp"
#include "tapegrad/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz_input_file(data, size, ".csv");
  try {
    (void)tapegrad::io::read_csv(path, size > 0 && (data[0] & 1));
  } catch (const tapegrad::io::IoError&) {
  }
  return 0;
}

// The file readers take paths: each fuzz input is written to a file of this process first.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

inline std::string fuzz_input_file(const unsigned char* data, std::size_t size,
                                   const char* suffix) {
  const std::string path = "/tmp/tapegrad-fuzz-" + std::to_string(::getpid()) + suffix;
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

// A file's content, gunzipped when it is gzip-compressed: one reading path for both.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tapegrad::io::detail {

/// Reads a file from its start: if it begins with the gzip magic (1f 8b), its gzip members
/// decompressed one after the other (as gzip -d does, but refusing zero padding after the
/// last one); otherwise its bytes as they are.
/// Errors are IoError naming the file.
class FileContent {
 public:
  /// Opens `path`. Throws IoError if it cannot be opened or read, is not a regular file, or
  /// its name holds a NUL byte (see open_regular_file()).
  explicit FileContent(const std::string& path);
  ~FileContent();
  FileContent(const FileContent&) = delete;
  FileContent& operator=(const FileContent&) = delete;

  /// Up to n bytes of content; fewer only at its end. Throws IoError for a read error, a
  /// corrupt or truncated gzip stream, or bytes after the last gzip member that do not start
  /// another one (zlib's gzread ignores both of the last two).
  std::size_t read(unsigned char* out, std::size_t n);
  /// Whether the file is gzip-compressed.
  bool compressed() const { return compressed_; }
  /// The file's size on disk, in bytes.
  std::uint64_t file_size() const { return file_size_; }

 private:
  // Moves the unread input to the front of the buffer and reads more; false at end of file.
  bool refill();
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t file_read_ = 0;  // bytes taken from the file into the buffer so far
  bool at_eof_ = false;
  bool compressed_ = false;
  bool inflating_ = false;  // z_ is initialized
  bool finished_ = false;   // the last gzip member has ended
  std::vector<unsigned char> buffer_;
  std::size_t start_ = 0, available_ = 0;  // unread input: buffer_[start_, start_ + available_)
  z_stream z_{};
};

}  // namespace tapegrad::io::detail

// Atomic file replacement: the new content appears whole, or the old file stays.
#pragma once

#include <cstddef>
#include <string>

namespace tapegrad::io {

/// Writes `size` bytes to `path` so that a crash or a full disk at any moment leaves either
/// the previous file or the new one, never a mix: the bytes go to a temporary file in the
/// same folder, which is flushed to disk (fsync) and then renamed over `path`. On failure
/// the temporary file is removed and IoError says what failed (with the system's reason).
void write_file_atomically(const std::string& path, const void* data, std::size_t size);

namespace detail {
/// For tests: called with the temporary file's path after it is complete and flushed, just
/// before the rename. A hook that throws (or ends the process) shows what an interruption
/// at that moment does.
extern void (*before_rename_hook)(const std::string& temporary_path);
}  // namespace detail

}  // namespace tapegrad::io

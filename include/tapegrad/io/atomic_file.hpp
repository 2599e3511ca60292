// Atomic file replacement: the new content appears whole, or the old file stays.
#pragma once

#include <cstddef>
#include <string>

namespace tapegrad::io {

/// Writes `size` bytes from `data` to `path` so that a crash or a full disk at any moment
/// leaves either the previous file or the new one, never a mix: the bytes go to a temporary
/// file ".name.tmp-XXXXXX" in the same folder, which is flushed to disk (fsync) and then
/// renamed over `path`. The new file keeps the previous file's read/write/execute
/// permissions, or, if there was none, gets what a plain write would give (0666 less the
/// umask). Throws IoError for an
/// empty `path` or one ending in '/', and when creating, setting permissions, writing,
/// flushing, closing or renaming fails (with the system's reason); the temporary file is then
/// removed.
void write_file_atomically(const std::string& path, const void* data, std::size_t size);

namespace detail {
/// For tests: called with the temporary file's path after it is complete and flushed, just
/// before the rename. A hook that throws (or ends the process) shows what an interruption
/// at that moment does.
extern void (*before_rename_hook)(const std::string& temporary_path);
}  // namespace detail

}  // namespace tapegrad::io

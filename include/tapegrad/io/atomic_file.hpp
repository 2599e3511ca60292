// Atomic file replacement: the new content appears whole, or the old file stays.
#pragma once

#include <cstddef>
#include <string>

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// Writes `size` bytes from `data` to `path` so that a crash or a full disk at any moment
/// leaves either the previous file or the new one, never a mix: the bytes go to a temporary
/// file beside the file, which is flushed to disk (fsync) and then renamed over it.
///
/// - Symbolic links: a `path` that is a link (or a chain of up to 40) is written through:
///   the link's final target is replaced (and created if the link dangles); the link stays
///   a link. The temporary file is made in the target's folder.
/// - Temporary files are named ".NAME.tapegrad-tmp-XXXXXX" (NAME the target's name, cut to
///   fit NAME_MAX; six random letters), and their writer holds an exclusive flock(2) on its
///   file until the rename. A writer killed before its rename (kill -9, a power cut) leaves
///   one behind; the next write of the same target removes those that nobody holds locked
///   and that are at least 2 seconds old, whatever process, container or PID namespace made
///   them, and keeps any other file. (On a network file system without working locks, a
///   live writer elsewhere could lose its temporary file: its rename then fails with an
///   IoError and the target stays whole.)
/// - Permissions: the new file keeps the previous file's read/write/execute permissions, or,
///   if there was none, gets what a plain write would give (0666 less the umask).
///
/// Throws IoError for an empty `path` or one ending in '/', a name longer than NAME_MAX, a
/// link loop, an existing target that is not a regular file (a folder, device, fifo or
/// socket), an existing target without write permission for its owner ("... is read-only
/// (mode 0444); not replaced": decided by the mode bits, so that root, who may write
/// anything, also leaves a file made read-only alone) or that the calling user may not write
/// ("not writable by this user", as access(2) says: a rename would need only the folder's
/// permission), and when creating, setting permissions, writing, flushing, closing or
/// renaming fails (with the system's reason); the temporary file is then removed.
void write_file_atomically(const std::string& path, const void* data, std::size_t size);

namespace detail {
/// For tests: called with the temporary file's path after it is complete and flushed, just
/// before the rename. A hook that throws (or ends the process) shows what an interruption
/// at that moment does.
extern void (*before_rename_hook)(const std::string& temporary_path);
}  // namespace detail

/// @}

}  // namespace tapegrad::io

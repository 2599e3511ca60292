#include "tapegrad/io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "names.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::io {

namespace detail {
void (*before_rename_hook)(const std::string& temporary_path) = nullptr;
}

namespace {

constexpr const char* kTemporaryTag = ".tapegrad-tmp-";
constexpr std::size_t kRandomLetters = 6;
// A leftover must be this old before it is removed: its writer locks it right after
// creating it, and this leaves that moment alone.
constexpr long kLeftoverAgeSeconds = 2;
constexpr int kMaxLinks = 40;  // as the kernel's own limit when it follows links

std::string system_reason() { return std::strerror(errno); }

std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The file that writing to `path` should replace: `path`, or the end of its chain of symbolic
// links (which need not exist yet: a dangling link gets its target created). Renaming over
// the link itself would turn it into a regular file and leave its target stale.
std::string final_target(const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops <= kMaxLinks; ++hops) {
    struct stat info {};
    if (::lstat(current.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) return current;
    const auto length = static_cast<std::size_t>(info.st_size > 0 ? info.st_size : PATH_MAX);
    std::vector<char> text(length + 1);
    const ssize_t n = ::readlink(current.c_str(), text.data(), text.size());
    if (n <= 0 || static_cast<std::size_t>(n) >= text.size()) {
      throw IoError(detail::printable(path) + ": cannot resolve the symbolic link " +
                    detail::printable(current) + ": " +
                    (n < 0 ? system_reason() : "it changed while being read"));
    }
    const std::string link(text.data(), static_cast<std::size_t>(n));
    current = link.front() == '/' ? link : folder_of(current) + "/" + link;
  }
  throw IoError(detail::printable(path) + ": cannot resolve the symbolic link: more than " +
                std::to_string(kMaxLinks) + " links in a chain (a loop?)");
}

// ".name.tapegrad-tmp-" for a target "folder/name": the start of the names of its temporary
// files. The name is shortened so that the whole file name stays within NAME_MAX.
std::string temporary_prefix(const std::string& target) {
  const std::size_t room = NAME_MAX - 1 - std::strlen(kTemporaryTag) - kRandomLetters;
  return "." + name_of(target).substr(0, room) + kTemporaryTag;
}

// Removes the temporary files that earlier writes of `target` left behind when their writer
// died (kill -9, a power cut): regular files named temporary_prefix(target) + 6 letters, at
// least kLeftoverAgeSeconds old, that nobody holds locked. A live writer holds an exclusive
// flock on its file until the rename, whatever its process id or PID namespace (a container
// sharing the folder), so its file is kept; so is any other name. Best effort: failures are
// ignored.
void remove_dead_writers_temporaries(const std::string& target) {
  const std::string folder = folder_of(target), prefix = temporary_prefix(target);
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> candidates;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() == prefix.size() + kRandomLetters &&
        name.compare(0, prefix.size(), prefix) == 0) {
      candidates.push_back(folder + "/" + name);
    }
  }
  ::closedir(dir);
  const auto now = std::time(nullptr);
  for (const auto& path : candidates) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) &&
        info.st_mtime + kLeftoverAgeSeconds <= now && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      ::unlink(path.c_str());
    }
    ::close(fd);
  }
}

// A new file temporary_prefix(target) + "XXXXXX" beside `target`, made like a plain write
// would make it: mode 0666 for the kernel to reduce by the umask and default ACLs (mkstemp
// would force 0600), and locked (flock) at once to show that its writer is alive. Returns the
// descriptor and sets `temporary_path`; -1 with errno set on failure.
int create_temporary(const std::string& target, std::string& temporary_path) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      static_cast<std::uint64_t>(::getpid()) << 32);
  const std::string stem = folder_of(target) + "/" + temporary_prefix(target);
  for (int attempt = 0; attempt < 100; ++attempt) {
    temporary_path = stem;
    for (std::size_t i = 0; i < kRandomLetters; ++i) {
      temporary_path += letters[random() % (sizeof letters - 1)];
    }
    const int fd = ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd >= 0 && ::flock(fd, LOCK_EX) != 0) {
      const int reason = errno;
      ::close(fd);
      ::unlink(temporary_path.c_str());
      errno = reason;
      return -1;
    }
    return fd;
  }
  errno = EEXIST;
  return -1;
}

// Removes the temporary file unless the rename has consumed it. `lock` is a second
// descriptor of the same open file, which keeps the flock after `fd` is closed (to see close
// errors) and until the rename.
struct TemporaryFile {
  std::string path;
  int fd = -1;
  int lock = -1;
  bool renamed = false;
  ~TemporaryFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed && !path.empty()) ::unlink(path.c_str());
    if (lock >= 0) ::close(lock);
  }
};

}  // namespace

void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
  detail::check_file_name(path);
  const std::string shown = detail::printable(path);
  if (path.empty() || path.back() == '/') throw IoError("'" + shown + "': not a file name");
  const std::string target = final_target(path);
  if (target.back() == '/') {
    throw IoError(shown + ": a symbolic link to '" + detail::printable(target) +
                  "', not to a file name");
  }
  const std::string where =
      target == path ? shown : shown + " (a link to " + detail::printable(target) + ")";
  struct stat old {};
  const bool exists = ::stat(target.c_str(), &old) == 0;
  // Renaming over a device or a fifo (say /dev/null) would remove it for everyone.
  if (exists && !S_ISREG(old.st_mode)) {
    throw IoError(where + ": not a regular file (a folder, device, fifo or socket); not replaced");
  }
  // Decided by the mode as well as by access(2): root may write anything, yet a file made
  // read-only is meant to stay as it is; and replacing a file by rename needs only the
  // folder's permission, so another user's file is checked as a plain write would be.
  if (exists && (old.st_mode & S_IWUSR) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(old.st_mode & 07777));
    throw IoError(where + ": the file is read-only (mode " + mode + "); not replaced");
  }
  if (exists && ::faccessat(AT_FDCWD, target.c_str(), W_OK, AT_EACCESS) != 0) {
    throw IoError(where + ": not writable by this user: " + system_reason() + "; not replaced");
  }
  if (name_of(target).size() > NAME_MAX) {
    throw IoError(where + ": the name is longer than " + std::to_string(NAME_MAX) + " bytes");
  }
  remove_dead_writers_temporaries(target);

  TemporaryFile temporary;
  std::string temporary_path;
  temporary.fd = create_temporary(target, temporary_path);
  if (temporary.fd < 0) {
    throw IoError(where + ": cannot create a temporary file in " +
                  detail::printable(folder_of(target)) + ": " + system_reason());
  }
  temporary.path = temporary_path;
  temporary.lock = ::dup(temporary.fd);
  if (temporary.lock < 0)
    throw IoError(where + ": cannot duplicate a descriptor: " + system_reason());
  if (exists && ::fchmod(temporary.fd, old.st_mode & 0777) != 0) {
    throw IoError(shown +
                  ": cannot give the new file the old one's permissions: " + system_reason());
  }

  const auto* bytes = static_cast<const unsigned char*>(data);
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(temporary.fd, bytes + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(shown + ": write failed after " + std::to_string(written) + " of " +
                    std::to_string(size) + " bytes: " + system_reason() +
                    " (the previous file is unchanged)");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(temporary.fd) != 0) {
    throw IoError(shown + ": flushing to disk failed: " + system_reason() +
                  " (the previous file is unchanged)");
  }
  if (::close(temporary.fd) != 0) {
    temporary.fd = -1;
    throw IoError(shown + ": closing failed: " + system_reason());
  }
  temporary.fd = -1;
  if (detail::before_rename_hook != nullptr) detail::before_rename_hook(temporary.path);
  if (::rename(temporary.path.c_str(), target.c_str()) != 0) {
    throw IoError(shown + ": cannot replace the file: " + system_reason());
  }
  temporary.renamed = true;
  // Make the rename itself durable.
  const int folder = ::open(folder_of(target).c_str(), O_RDONLY | O_DIRECTORY);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

}  // namespace tapegrad::io

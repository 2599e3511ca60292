#include "tapegrad/io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
  const std::size_t room = NAME_MAX - 1 - std::strlen(kTemporaryTag) - 10 - 1 - kRandomLetters;
  return "." + name_of(target).substr(0, room) + kTemporaryTag;
}

// Removes the temporary files that earlier writes of `target` left behind when their process
// died (kill -9, a power cut): names temporary_prefix(target) + "<pid>-<6 letters>" of
// regular files whose pid is no live process (kill(pid, 0) fails with ESRCH). A live writer's
// file, or any other name, is kept. Best effort: failures are ignored.
void remove_dead_writers_temporaries(const std::string& target) {
  const std::string folder = folder_of(target), prefix = temporary_prefix(target);
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "<pid>-<letters>"
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash > 10 ||
        rest.size() != dash + 1 + kRandomLetters || rest.find_first_not_of("0123456789") != dash) {
      continue;
    }
    const long long pid = std::stoll(rest.substr(0, dash));
    // kill(0, ...) and negative pids address process groups: never ask about those.
    if (pid < 1 || pid > INT_MAX || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    struct stat info {};
    const std::string path = folder + "/" + name;
    if (::lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) stale.push_back(path);
  }
  ::closedir(dir);
  for (const auto& path : stale) ::unlink(path.c_str());
}

// A new file temporary_prefix(target) + "<pid>-XXXXXX" beside `target`, made like a plain write
// would make it: mode 0666 for the kernel to reduce by the umask and default ACLs (mkstemp
// would force 0600). Returns the descriptor and sets `temporary_path`; -1 with errno set on
// failure.
int create_temporary(const std::string& target, std::string& temporary_path) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      static_cast<std::uint64_t>(::getpid()) << 32);
  const std::string stem =
      folder_of(target) + "/" + temporary_prefix(target) + std::to_string(::getpid()) + "-";
  for (int attempt = 0; attempt < 100; ++attempt) {
    temporary_path = stem;
    for (std::size_t i = 0; i < kRandomLetters; ++i) {
      temporary_path += letters[random() % (sizeof letters - 1)];
    }
    const int fd = ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

// Removes the temporary file unless the rename has consumed it.
struct TemporaryFile {
  std::string path;
  int fd = -1;
  bool renamed = false;
  ~TemporaryFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed && !path.empty()) ::unlink(path.c_str());
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
  // Decided by the mode, not by access(2): root may write anything, yet a file made
  // read-only is meant to stay as it is.
  if (exists && (old.st_mode & S_IWUSR) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(old.st_mode & 07777));
    throw IoError(where + ": the file is read-only (mode " + mode + "); not replaced");
  }
  remove_dead_writers_temporaries(target);

  TemporaryFile temporary;
  std::string temporary_path;
  temporary.fd = create_temporary(target, temporary_path);
  if (temporary.fd < 0) {
    throw IoError(shown + ": cannot create a temporary file beside it: " + system_reason());
  }
  temporary.path = temporary_path;
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

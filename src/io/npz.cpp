#include "tapegrad/io/npz.hpp"

#include <zip.h>

#include <memory>
#include <set>

#include "expansion_limit.hpp"
#include "file_bytes.hpp"
#include "names.hpp"
#include "tapegrad/io/atomic_file.hpp"

namespace tapegrad::io {

namespace {

std::string zip_reason(zip_error_t* error) {
  std::string reason = zip_error_strerror(error);
  zip_error_fini(error);
  return reason;
}

struct ArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using Archive = std::unique_ptr<zip_t, ArchiveCloser>;

struct MemberCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

}  // namespace

NpzArchive parse_npz(const unsigned char* data, std::size_t size, const std::string& source) {
  const std::string where = detail::printable(source);
  // libzip opens 0 bytes as an archive with no members; even an empty archive has its
  // 22-byte end record, so this is a file that was never written (or was cut to nothing).
  if (size == 0) throw IoError(where + ": empty file, not a .npz (zip) archive");
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(size ? data : nullptr, size, 0, &error);
  if (buffer == nullptr) throw IoError(where + ": " + zip_reason(&error));
  Archive archive(zip_open_from_source(buffer, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!archive) {
    zip_source_free(buffer);
    throw IoError(where + ": not a readable .npz (zip) archive: " + zip_reason(&error));
  }
  zip_error_fini(&error);

  NpzArchive arrays;
  std::set<std::string> seen;
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0 ||
        !(stat.valid & ZIP_STAT_NAME) || !(stat.valid & ZIP_STAT_SIZE) ||
        !(stat.valid & ZIP_STAT_COMP_SIZE)) {
      throw IoError(where + ": member " + std::to_string(i) +
                    " cannot be read: " + zip_strerror(archive.get()));
    }
    std::string name = stat.name;
    const std::string member = where + ": member '" + detail::printable(name) + "'";
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0) {
      throw IoError(member + " is not a .npy file");
    }
    name.resize(name.size() - 4);
    if (!seen.insert(name).second) throw IoError(member + " appears twice");
    if (detail::exceeds_expansion(stat.size, stat.comp_size)) {
      throw IoError(member + " claims " + std::to_string(stat.size) + " bytes from " +
                    std::to_string(stat.comp_size) + " compressed ones, " +
                    detail::kExpansionLimitText + ": refused as a decompression bomb");
    }
    std::unique_ptr<zip_file_t, MemberCloser> file(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!file) throw IoError(member + " cannot be opened: " + zip_strerror(archive.get()));
    // Grow with the data actually read, never with the size the archive claims.
    std::vector<unsigned char> bytes;
    unsigned char chunk[1 << 16];
    while (true) {
      const zip_int64_t n = zip_fread(file.get(), chunk, sizeof chunk);
      if (n < 0) throw IoError(member + " is corrupt: " + zip_file_strerror(file.get()));
      if (n == 0) break;
      bytes.insert(bytes.end(), chunk, chunk + n);
      if (bytes.size() > stat.size) throw IoError(member + " holds more data than it declares");
    }
    if (bytes.size() != stat.size) {
      throw IoError(member + " is truncated: " + std::to_string(bytes.size()) + " of " +
                    std::to_string(stat.size) + " bytes");
    }
    arrays.emplace_back(name, parse_npy(bytes.data(), bytes.size(), member));
  }
  return arrays;
}

NpzArchive read_npz(const std::string& path) {
  const auto bytes = detail::read_file(path);
  return parse_npz(bytes.data(), bytes.size(), path);
}

void write_npz(const std::string& path, const NpzArchive& arrays, bool compress) {
  const std::string shown = detail::printable(path);
  std::set<std::string> names;
  for (const auto& entry : arrays) {
    // A NUL would end the member's name early: the archive would hold another name.
    if (entry.first.empty() || entry.first.find('\0') != std::string::npos ||
        !names.insert(entry.first).second) {
      throw ValueError("write_npz: the name '" + detail::printable(entry.first) +
                       "' is empty, holds a NUL byte or is repeated");
    }
  }
  if (arrays.empty()) {
    // libzip writes nothing at all for an archive without members; a zip file with none is
    // its end-of-central-directory record alone, as numpy.savez() writes it.
    const unsigned char end_record[22] = {'P', 'K', 5, 6};
    write_file_atomically(path, end_record, sizeof end_record);
    return;
  }
  // Build the archive in memory, then write it with the atomic file writer.
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) throw IoError(shown + ": " + zip_reason(&error));
  zip_source_keep(buffer);
  struct SourceReleaser {
    zip_source_t* source;
    ~SourceReleaser() { zip_source_free(source); }
  } releaser{buffer};
  Archive archive(zip_open_from_source(buffer, ZIP_TRUNCATE, &error));
  if (!archive) {
    zip_source_free(buffer);  // the reference zip_open_from_source did not take
    throw IoError(shown + ": cannot start an archive: " + zip_reason(&error));
  }
  std::vector<std::vector<unsigned char>> members;  // must outlive zip_close
  members.reserve(arrays.size());
  for (const auto& [name, array] : arrays) {
    members.push_back(serialize_npy(array));
    const auto& bytes = members.back();
    zip_source_t* member = zip_source_buffer(archive.get(), bytes.data(), bytes.size(), 0);
    if (member == nullptr) throw IoError(shown + ": " + zip_strerror(archive.get()));
    const zip_int64_t index =
        zip_file_add(archive.get(), (name + ".npy").c_str(), member, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(member);
      throw IoError(shown + ": cannot add '" + detail::printable(name) +
                    "': " + zip_strerror(archive.get()));
    }
    zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index),
                             compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  if (zip_close(archive.get()) != 0) {
    throw IoError(shown + ": cannot finish the archive: " + zip_strerror(archive.get()));
  }
  (void)archive.release();  // zip_close freed it

  zip_stat_t stat;
  if (zip_source_stat(buffer, &stat) != 0 || zip_source_open(buffer) != 0) {
    throw IoError(shown + ": cannot read back the archive built in memory");
  }
  std::vector<unsigned char> bytes(stat.size);
  const zip_int64_t n = zip_source_read(buffer, bytes.data(), bytes.size());
  zip_source_close(buffer);
  if (n < 0 || static_cast<zip_uint64_t>(n) != stat.size) {
    throw IoError(shown + ": cannot read back the archive built in memory");
  }
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace tapegrad::io

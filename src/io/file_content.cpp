#include "file_content.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "file_bytes.hpp"
#include "names.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::io::detail {

FileContent::FileContent(const std::string& path) : path_(path), buffer_(std::size_t{1} << 16) {
  file_ = open_regular_file(path, file_size_);
  refill();
  compressed_ = available_ >= 2 && buffer_[0] == 0x1f && buffer_[1] == 0x8b;
  if (compressed_) {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) fail("cannot start gzip decompression");
    inflating_ = true;
  }
}

FileContent::~FileContent() {
  if (inflating_) inflateEnd(&z_);
  if (file_ != nullptr) std::fclose(file_);
}

void FileContent::fail(const std::string& what) const {
  throw IoError(printable(path_) + ": " + what);
}

bool FileContent::refill() {
  if (at_eof_) return false;
  std::memmove(buffer_.data(), buffer_.data() + start_, available_);
  start_ = 0;
  const std::size_t n =
      std::fread(buffer_.data() + available_, 1, buffer_.size() - available_, file_);
  if (std::ferror(file_)) fail(std::string("read failed: ") + std::strerror(errno));
  if (n == 0) at_eof_ = true;
  available_ += n;
  file_read_ += n;
  return n > 0;
}

std::size_t FileContent::read(unsigned char* out, std::size_t n) {
  std::size_t done = 0;
  if (!compressed_) {
    while (done < n) {
      if (available_ == 0 && !refill()) break;
      const std::size_t take = std::min(n - done, available_);
      std::memcpy(out + done, buffer_.data() + start_, take);
      start_ += take;
      available_ -= take;
      done += take;
    }
    return done;
  }
  while (done < n && !finished_) {
    if (available_ == 0) refill();
    z_.next_in = buffer_.data() + start_;
    z_.avail_in = static_cast<uInt>(available_);
    z_.next_out = out + done;
    z_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - done, UINT_MAX));
    const int status = inflate(&z_, Z_NO_FLUSH);
    const std::size_t produced = static_cast<std::size_t>(z_.next_out - out) - done;
    const std::size_t consumed = available_ - z_.avail_in;
    done += produced;
    start_ += consumed;
    available_ -= consumed;
    if (status == Z_STREAM_END) {
      // Another member may follow; anything else after the stream is refused, as bytes
      // after the data of a plain file are.
      if (available_ < 2) refill();
      if (available_ == 0) {
        finished_ = true;
      } else if (available_ >= 2 && buffer_[start_] == 0x1f && buffer_[start_ + 1] == 0x8b) {
        inflateReset(&z_);
      } else {
        const std::uint64_t rest =
            available_ + (file_size_ > file_read_ ? file_size_ - file_read_ : 0);
        fail(std::to_string(rest) + " bytes follow the gzip stream (at byte " +
             std::to_string(file_read_ - available_) + " of the file)");
      }
    } else if (status == Z_BUF_ERROR && available_ == 0 && at_eof_) {
      fail("truncated gzip stream: the file ends inside it");
    } else if (status != Z_OK && !(status == Z_BUF_ERROR && produced + consumed > 0)) {
      fail(std::string("corrupt gzip stream: ") + (z_.msg != nullptr ? z_.msg : "inflate failed"));
    }
  }
  return done;
}

}  // namespace tapegrad::io::detail

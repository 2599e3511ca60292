#include "common/output.hpp"

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace examples {

CLI::Option* add_out_option(CLI::App& app, std::string& out, const std::string& file_options) {
  return app
      .add_option("--out", out,
                  "folder for the files this program writes, created if missing; a relative " +
                      file_options + " path is taken inside it, an absolute one as given")
      ->capture_default_str();
}

void make_out_folder(const std::string& out) {
  std::error_code error;
  if (fs::is_directory(out, error)) return;
  if (fs::exists(out, error)) throw std::runtime_error("--out: '" + out + "' is not a folder");
  fs::create_directories(out, error);
  if (error) {
    throw std::runtime_error("--out: cannot create the folder '" + out + "': " + error.message());
  }
}

std::string out_path(const std::string& out, const std::string& file) {
  if (file.empty()) return file;
  const fs::path path(file);
  if (path.is_absolute() || out.empty() || out == ".") return file;
  return (fs::path(out) / path).string();
}

}  // namespace examples

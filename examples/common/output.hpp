// Where a demo writes its files: one --out folder for all of them (pictures, .dot, .npz),
// and the per-file options (--plot, --dot, --weights) resolved inside it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace examples {

/// Adds `--out DIR` to `app`, stored in `out` (default "."): the folder for every file the
/// demo writes, created if missing. `file_options` names the demo's per-file options, e.g.
/// "--plot", for the help text: a relative path given to them is taken inside DIR, an
/// absolute one is used as given.
CLI::Option* add_out_option(CLI::App& app, std::string& out, const std::string& file_options);

/// Creates the folder `out` and its parents if they are missing. Throws std::runtime_error
/// naming the folder and the reason if it cannot: "--out: cannot create the folder
/// 'a/b/c': Not a directory", or "--out: 'a/b' is not a folder" for an existing file.
void make_out_folder(const std::string& out);

/// Where the file `file` goes: "" stays "" (nothing to write), an absolute path is used as
/// given, a relative one is taken inside `out` ("out/file"; "file" when `out` is ".").
std::string out_path(const std::string& out, const std::string& file);

}  // namespace examples

// Numeric tables as comma-separated text.
#pragma once

#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad::io {

struct CsvTable {
  std::vector<std::string> header;  // empty when the file has none
  xt::xarray<double> values;        // (rows, columns)
};

/// Reads a table of numbers, one row per line (blank lines skipped), cells separated by
/// `delimiter` and trimmed of spaces; with `has_header`, the first line names the columns.
/// Cells are not quoted. Throws IoError "file:line:column: ..." for a cell that is not a
/// number, or a row whose cell count differs from the first row's.
CsvTable read_csv(const std::string& path, bool has_header = false, char delimiter = ',');

/// Writes a 2-d array (a 1-d array as one column) with an optional header, atomically,
/// numbers printed with 17 significant digits so they read back exactly. Throws ValueError
/// if the header's length is not the column count.
template <class T>
void write_csv(const std::string& path, const xt::xarray<T>& values,
               const std::vector<std::string>& header = {}, char delimiter = ',');

}  // namespace tapegrad::io

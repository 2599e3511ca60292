// Numeric tables as comma-separated text.
#pragma once

#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// A table read by read_csv().
struct CsvTable {
  std::vector<std::string> header;  ///< the column names; empty when the file has none
  xt::xarray<double> values;        ///< shape (rows, columns)
};

/// Reads a table of numbers, one row per line (blank lines skipped; a line ends at LF, CR LF
/// or a lone CR), cells separated by `delimiter` and trimmed of spaces and tabs; with
/// `has_header`, the first non-blank line names the columns. A UTF-8 byte order mark at the
/// start of the file is skipped. Cells are not quoted; strtod must read each cell completely
/// (a value below the smallest double rounds toward 0). Throws IoError if the file cannot be
/// read or is not a regular file (a FIFO, device or folder is refused before reading),
/// "file:line:column: '1x' is not a number" for a cell that is empty or not a number,
/// "file:line:column: '1e999' is out of range for a double" for one that overflows, and
/// "file:line: ..." for a row whose cell count differs from the header's (or, without one,
/// the first row's). Control bytes in the file name and cells are shown escaped (\\0, \\r,
/// \\xNN).
CsvTable read_csv(const std::string& path, bool has_header = false, char delimiter = ',');

/// Writes a 2-d array (a 1-d array as one column) with an optional header (names written
/// as they are, not quoted), atomically (see write_file_atomically()), numbers printed with
/// 17 significant digits so they read back exactly. T = float or double. Throws ShapeError
/// if the array is not 1-d or 2-d, ValueError if a non-empty header's length is not the
/// column count or a name would not read back the same (empty, starting or ending with a
/// space, tab or carriage return, or holding the delimiter, a double quote or a line break),
/// and IoError if the file cannot be written.
template <class T>
void write_csv(const std::string& path, const xt::xarray<T>& values,
               const std::vector<std::string>& header = {}, char delimiter = ',');

/// @}

}  // namespace tapegrad::io

#include "tapegrad/io/csv.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "file_bytes.hpp"
#include "names.hpp"
#include "tapegrad/io/atomic_file.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::io {

namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

std::vector<std::string> split(const std::string& line, char delimiter) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const auto at = line.find(delimiter, start);
    cells.push_back(
        trim(line.substr(start, at == std::string::npos ? std::string::npos : at - start)));
    if (at == std::string::npos) return cells;
    start = at + 1;
  }
}

}  // namespace

CsvTable read_csv(const std::string& path, bool has_header, char delimiter) {
  const auto bytes = detail::read_file(path);
  // A UTF-8 byte order mark (as some spreadsheet programs write) is not part of the first cell.
  const bool bom = bytes.size() >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF;
  const std::string text(bytes.begin() + (bom ? 3 : 0), bytes.end());
  const std::string shown = detail::printable(path);
  CsvTable table;
  std::vector<double> values;
  std::size_t columns = 0, rows = 0, line_number = 0, start = 0;
  bool header_pending = has_header;
  while (start <= text.size()) {
    // A line ends at LF, CR LF or a lone CR (old Mac files), as Python's universal newlines.
    auto end = text.find_first_of("\r\n", start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1);
    ++line_number;
    if (trim(line).empty()) continue;
    auto cells = split(line, delimiter);
    const std::string where = shown + ":" + std::to_string(line_number);
    if (header_pending) {
      table.header = cells;
      columns = cells.size();
      header_pending = false;
      continue;
    }
    if (columns == 0) columns = cells.size();
    if (cells.size() != columns) {
      throw IoError(where + ": " + std::to_string(cells.size()) + " cells, expected " +
                    std::to_string(columns));
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string& cell = cells[c];
      char* parsed_end = nullptr;
      errno = 0;
      const double v = cell.empty() ? 0.0 : std::strtod(cell.c_str(), &parsed_end);
      const std::string at =
          where + ":" + std::to_string(c + 1) + ": '" + detail::printable(cell) + "'";
      if (cell.empty() || parsed_end != cell.c_str() + cell.size()) {
        throw IoError(at + " is not a number");
      }
      // Underflow rounds toward 0 and is kept, as NumPy keeps it; overflow has no value.
      if (errno == ERANGE && std::abs(v) == HUGE_VAL) {
        throw IoError(at + " is out of range for a double (at most about 1.8e308 in magnitude)");
      }
      values.push_back(v);
    }
    ++rows;
  }
  table.values = xt::xarray<double>::from_shape({rows, columns});
  std::copy(values.begin(), values.end(), table.values.begin());
  return table;
}

template <class T>
void write_csv(const std::string& path, const xt::xarray<T>& values,
               const std::vector<std::string>& header, char delimiter) {
  if (values.dimension() != 1 && values.dimension() != 2) {
    throw ShapeError("write_csv: expected a 1-d or 2-d array, got shape " +
                     shape_to_string(values.shape()));
  }
  const std::size_t rows = values.shape()[0];
  const std::size_t columns = values.dimension() == 2 ? values.shape()[1] : 1;
  if (!header.empty() && header.size() != columns) {
    throw ValueError("write_csv: " + std::to_string(header.size()) + " header names for " +
                     std::to_string(columns) + " columns");
  }
  for (const auto& name : header) {
    // Names are written unquoted and read_csv trims cells, so these would not read back the
    // same; a double quote would be taken for quoting by other CSV readers (NumPy, pandas).
    const char* blank = " \t\r";
    if (name.find_first_of(std::string(1, delimiter) + "\"\n\r") != std::string::npos ||
        name.empty() || std::strchr(blank, name.front()) || std::strchr(blank, name.back())) {
      throw ValueError("write_csv: the header name '" + detail::printable(name) +
                       "' would not read back: it is " +
                       "empty, starts or ends with a blank, or holds the delimiter, a double " +
                       "quote or a line break");
    }
  }
  std::ostringstream out;
  out << std::setprecision(17);
  for (std::size_t c = 0; c < header.size(); ++c)
    out << (c ? std::string(1, delimiter) : "") << header[c];
  if (!header.empty()) out << '\n';
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < columns; ++c) {
      if (c) out << delimiter;
      out << static_cast<double>(values.data()[r * columns + c]);
    }
    out << '\n';
  }
  const std::string text = out.str();
  write_file_atomically(path, text.data(), text.size());
}

template void write_csv(const std::string&, const xt::xarray<float>&,
                        const std::vector<std::string>&, char);
template void write_csv(const std::string&, const xt::xarray<double>&,
                        const std::vector<std::string>&, char);

}  // namespace tapegrad::io

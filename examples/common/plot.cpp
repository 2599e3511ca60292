#include "common/plot.hpp"

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace examples {

bool gnuplot_available() {
  static const bool available = [] {
    const bool found = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
    if (!found) {
      std::cerr << "note: gnuplot is not installed, so no pictures are drawn "
                   "(apt-get install gnuplot-nox); the results below are complete.\n";
    }
    return found;
  }();
  return available;
}

std::string gnuplot_quote(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '\n') {
      quoted += "\\n";  // a line break in a title or label
      continue;
    }
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

std::string data_block(const std::string& name, const std::vector<double>& x,
                       const std::vector<double>& y) {
  std::ostringstream out;
  out.precision(17);
  out << "$" << name << " << EOD\n";
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) out << x[i] << ' ' << y[i] << '\n';
  out << "EOD\n";
  return out.str();
}

bool run_gnuplot(const std::string& script) {
  if (!gnuplot_available()) return false;
  std::FILE* pipe = ::popen("gnuplot", "w");
  if (pipe == nullptr) return false;
  std::fwrite(script.data(), 1, script.size(), pipe);
  return ::pclose(pipe) == 0;
}

bool Plot::save(const std::string& png_path) const {
  std::ostringstream script;
  for (std::size_t i = 0; i < series_.size(); ++i) {
    script << data_block("s" + std::to_string(i), series_[i].x, series_[i].y);
  }
  script << "set terminal pngcairo size " << width_ << "," << height_
         << " enhanced font 'sans,11'\n"
         << "set output " << gnuplot_quote(png_path) << "\n"
         << "set title " << gnuplot_quote(title_) << "\n"
         << "set xlabel " << gnuplot_quote(x_label_) << "\n"
         << "set ylabel " << gnuplot_quote(y_label_) << "\n"
         << "set grid\n"
         // Room on the right for half of the last x tick label ("100000" was cut in two).
         << "set rmargin 6\n";
  if (log_y_) script << "set logscale y\n";
  for (const auto& line : commands_) script << line << "\n";
  script << "plot ";
  for (std::size_t i = 0; i < series_.size(); ++i) {
    script << (i ? ", " : "") << "$s" << i << " using 1:2 with " << series_[i].style << " title "
           << gnuplot_quote(series_[i].title);
  }
  script << "\n";
  return run_gnuplot(script.str());
}

}  // namespace examples

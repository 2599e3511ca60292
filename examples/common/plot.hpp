// PNG plots drawn by gnuplot: the data goes inline into the script (gnuplot 5 data
// blocks), the script into a gnuplot process. Without gnuplot a demo says so once and
// carries on: its printed results do not depend on the pictures.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace examples {

/// True if `gnuplot` can be run; the first call that finds it missing prints how to
/// install it.
bool gnuplot_available();

struct Series {
  std::string title;
  std::vector<double> x, y;
  /// A gnuplot style: "lines", "points pt 7 ps 0.6", "linespoints", ...
  std::string style = "lines";
};

class Plot {
 public:
  Plot& title(std::string text) {
    title_ = std::move(text);
    return *this;
  }
  Plot& labels(std::string x, std::string y) {
    x_label_ = std::move(x);
    y_label_ = std::move(y);
    return *this;
  }
  Plot& log_y(bool on = true) {
    log_y_ = on;
    return *this;
  }
  /// The picture's size in pixels (default 900 x 600).
  Plot& size(int width, int height) {
    width_ = width;
    height_ = height;
    return *this;
  }
  Plot& add(Series series) {
    series_.push_back(std::move(series));
    return *this;
  }
  /// Any gnuplot command, run before the plot command (ranges, keys, ...).
  Plot& command(std::string line) {
    commands_.push_back(std::move(line));
    return *this;
  }
  /// Draws the plot into `png_path`; false if gnuplot is missing or failed.
  bool save(const std::string& png_path) const;

 private:
  std::string title_, x_label_, y_label_;
  bool log_y_ = false;
  int width_ = 900, height_ = 600;
  std::vector<Series> series_;
  std::vector<std::string> commands_;
};

/// Runs a complete gnuplot script (for plots Plot does not cover); false on failure.
bool run_gnuplot(const std::string& script);

/// Quotes a string for gnuplot; a newline in it becomes a line break.
std::string gnuplot_quote(const std::string& text);

/// A data block named `name` with one "x y" line per point.
std::string data_block(const std::string& name, const std::vector<double>& x,
                       const std::vector<double>& y);

}  // namespace examples

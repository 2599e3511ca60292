// The demos' command lines: one main() wrapper that turns any error into a message and an
// exit status, CLI11 validators whose messages say what was expected, and strict parsing of
// whole and finite numbers (for options and for the exercise file of manual_bp).
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace examples {

/// The exit status of a demo whose input or run failed with an exception.
inline constexpr int kErrorStatus = 2;

/// Runs a demo's `body(argc, argv)` and returns its status. An exception escaping it
/// (tapegrad::Error and io::IoError with their messages, any std::exception, anything else)
/// is printed on stderr as "<program>: <message>" and the status is kErrorStatus: a demo
/// never aborts on bad input. Use as `int main(int argc, char** argv) { return
/// examples::run_main(argc, argv, run); }`.
int run_main(int argc, char** argv, int (*body)(int, char**));

/// `text` as a whole number from `low` to `high`: decimal digits with an optional sign, all
/// of the text (no fraction, exponent, spaces or trailing characters); nothing otherwise.
std::optional<long long> parse_whole(const std::string& text, long long low, long long high);

/// `text` as a finite number: all of it read by std::strtod, neither NaN nor infinite nor
/// out of range; nothing otherwise.
std::optional<double> parse_finite(const std::string& text);

/// A comma-separated list of layer sizes, "784,256,10" -> {784, 256, 10}: whole numbers from
/// 1 to `largest`, at least `at_least` of them. Throws std::invalid_argument naming `option`:
/// "--sizes: expected whole numbers from 1 to 100 separated by commas, got 'x' in '2,x,2'".
std::vector<std::size_t> parse_sizes(const std::string& text, const std::string& option,
                                     std::size_t largest, std::size_t at_least);

/// CLI11 transform (attach with ->transform: it rewrites the text to plain decimal, which
/// CLI11 would otherwise read as octal with a leading 0): a whole number from `low` to
/// `high` ("--epochs: expected a whole number from 1 to 1000000, got '0'").
CLI::Validator whole(long long low, long long high);

/// CLI11 transform: a seed, a whole number from 0 to 2^64 - 1 written in decimal (CLI11 alone
/// would turn "-1" into 18446744073709551615 and read "010" as octal).
CLI::Validator seed_number();

/// CLI11 check: a finite number above 0.
CLI::Validator positive();

/// CLI11 check: a finite number, 0 or above.
CLI::Validator non_negative();

/// CLI11 check: a finite number.
CLI::Validator finite();

}  // namespace examples

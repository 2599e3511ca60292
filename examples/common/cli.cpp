#include "common/cli.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <stdexcept>

namespace examples {

int run_main(int argc, char** argv, int (*body)(int, char**)) {
  std::string program = argc > 0 && argv[0] ? argv[0] : "demo";
  program = program.substr(program.find_last_of('/') + 1);
  try {
    return body(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), error.what());
  } catch (...) {
    std::fprintf(stderr, "%s: stopped by an exception that is not a std::exception\n",
                 program.c_str());
  }
  return kErrorStatus;
}

std::optional<long long> parse_whole(const std::string& text, long long low, long long high) {
  const std::size_t start = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (text.size() == start || text.find_first_not_of("0123456789", start) != std::string::npos)
    return {};
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value < low || value > high) return {};
  return value;
}

std::optional<double> parse_finite(const std::string& text) {
  // strtod would skip leading spaces; a word with them is not a number here.
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return {};
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  // ERANGE also flags an underflow to a subnormal or zero: refused too, it is not the number
  // written.
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) return {};
  return value;
}

std::vector<std::size_t> parse_sizes(const std::string& text, const std::string& option,
                                     std::size_t largest, std::size_t at_least) {
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(option + ": expected whole numbers from 1 to " +
                                std::to_string(largest) + " separated by commas, " + what);
  };
  std::vector<std::size_t> sizes;
  if (!text.empty()) {
    std::stringstream in(text + ",");  // so that a trailing comma leaves an empty item
    std::string item;
    while (std::getline(in, item, ',')) {
      const auto size = parse_whole(item, 1, static_cast<long long>(largest));
      if (!size) fail("got '" + item + "' in '" + text + "'");
      sizes.push_back(static_cast<std::size_t>(*size));
    }
  }
  if (sizes.size() < at_least) {
    fail("at least " + std::to_string(at_least) + " of them, got '" + text + "'");
  }
  return sizes;
}

namespace {

CLI::Validator number_check(const char* expected, bool (*accept)(double)) {
  return CLI::Validator(
      [expected, accept](std::string& text) -> std::string {
        const auto value = parse_finite(text);
        if (value && accept(*value)) return {};
        return std::string("expected ") + expected + ", got '" + text + "'";
      },
      "NUMBER");
}

}  // namespace

CLI::Validator whole(long long low, long long high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        if (const auto value = parse_whole(text, low, high)) {
          // CLI11 converts with base 0: "010" would be read as octal 8. Hand it the decimal.
          text = std::to_string(*value);
          return {};
        }
        return "expected a whole number from " + std::to_string(low) + " to " +
               std::to_string(high) + ", got '" + text + "'";
      },
      "INT in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
}

CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits =
            !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long value = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (digits && errno != ERANGE) {
          text = std::to_string(value);  // decimal, not octal (see whole)
          return {};
        }
        return "expected a whole number from 0 to 18446744073709551615, got '" + text + "'";
      },
      "UINT");
}

CLI::Validator positive() {
  return number_check("a finite number above 0", [](double v) { return v > 0; });
}

CLI::Validator non_negative() {
  return number_check("a finite number, 0 or above", [](double v) { return v >= 0; });
}

CLI::Validator finite() {
  return number_check("a finite number", [](double) { return true; });
}

}  // namespace examples

// The op table: every op block in src/ is on the library's op list, and every op's forward
// kernel, run again on its recorded inputs, computes what the op computed (the kernels are
// functions of the inputs' values and the op's attributes alone, as a replayed step needs).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/tape_impl.hpp"
#include "helpers.hpp"
#include "op_cases.hpp"
#include "ops/op_names.hpp"

using namespace tapegrad;

namespace {

// The names of the op blocks in src/ (each says `static constexpr const char* name = "...";`).
std::set<std::string> op_blocks_in_sources() {
  std::set<std::string> names;
  const std::regex block_name("static constexpr const char\\* name = \"([a-z][a-z0-9_]*)\";");
  for (const auto& entry : std::filesystem::recursive_directory_iterator(TAPEGRAD_SOURCE_DIR)) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const std::string source = text.str();
    for (std::sregex_iterator m(source.begin(), source.end(), block_name), end; m != end; ++m) {
      names.insert((*m)[1]);
    }
  }
  return names;
}

// Bitwise equality, NaN included.
bool same_bits(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Case c's inputs as leaves that require grad.
std::vector<Tensor<double>> leaves(const test::OpCase& c) {
  std::vector<Tensor<double>> xs;
  for (const auto& a : c.inputs) xs.emplace_back(a, requires_grad);
  return xs;
}

}  // namespace

TEST_CASE("every op block in src/ is on the library's op list, and nothing else is") {
  const auto in_sources = op_blocks_in_sources();
  REQUIRE(in_sources.size() > 20);  // the scan of src/ found the blocks
  const auto listed = detail::op_names();
  const std::set<std::string> on_list(listed.begin(), listed.end());
  for (const auto& name : in_sources) {
    INFO("the op block '", name, "' is not registered (TAPEGRAD_REGISTER_OP)");
    CHECK(on_list.count(name) == 1);
  }
  for (const auto& name : on_list) {
    INFO("'", name, "' is registered but no op block in src/ has that name");
    CHECK(in_sources.count(name) == 1);
  }
}

TEST_CASE("every recorded op's forward kernel, run again, gives the value the op recorded") {
  for (const auto& c : test::all_cases()) {
    SUBCASE(c.name.c_str()) {
      const auto xs = leaves(c);
      Tape tape;
      const auto y = c.f64(xs);
      const Tensor<double> w(test::random_array(y.shape(), 99, 0.5, 1.5));
      sum(w * y * y).backward(create_graph);  // the rules' ops are recorded too
      auto& records = detail::active_tape()->records;
      REQUIRE(records.size() > 0);
      for (std::size_t i = 0; i < records.size(); ++i) {
        auto& record = records[i];
        auto& out = static_cast<detail::Node<double>&>(*record.output).value;
        const xt::xarray<double> recorded = out;
        std::fill(out.begin(), out.end(), -12345.0);  // the kernel must write every element
        record.entry->forward(record);
        INFO("record ", i, ": op ", record.op);
        CHECK(same_bits(out, recorded));
      }
    }
  }
}

TEST_CASE(
    "run again in order after an input changed in place, the kernels give the new function value") {
  // What a compiled step does: the same records, new input values.
  for (const auto& c : test::all_cases()) {
    SUBCASE(c.name.c_str()) {
      auto xs = leaves(c);
      Tape tape;
      const auto y = c.f64(xs);
      // New values: each input scaled by 1.01 (inside every case's smooth domain).
      std::vector<xt::xarray<double>> moved;
      for (const auto& a : c.inputs) moved.push_back(a * 1.01);
      for (std::size_t k = 0; k < xs.size(); ++k) xs[k].mutable_value() = moved[k];
      auto& records = detail::active_tape()->records;
      for (std::size_t i = 0; i < records.size(); ++i) records[i].entry->forward(records[i]);

      std::vector<Tensor<double>> fresh;
      for (const auto& a : moved) fresh.emplace_back(a);
      const auto expected = c.f64(fresh);
      CHECK(same_bits(y.value(), expected.value()));
    }
  }
}

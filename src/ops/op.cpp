// The list of built-in ops, filled by each op block's TAPEGRAD_REGISTER_OP.
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "ops/op_names.hpp"

namespace tapegrad::detail {

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<std::string> names;
};
Registry& registry() {
  static Registry r;  // made on first use: the registrations run during static initialisation
  return r;
}
}  // namespace

bool register_op(const char* name) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  r.names.emplace_back(name);
  return true;
}

std::vector<std::string> op_names() {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names = r.names;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace tapegrad::detail

#include "tapegrad/io/state.hpp"

#include <map>

#include "names.hpp"
#include "state_entries.hpp"
#include "tapegrad/io/npz.hpp"

namespace tapegrad::io {

template <class T>
void save_state(const nn::Module<T>& module, const std::string& path) {
  NpzArchive arrays;
  for (const auto& entry : detail::state_entries(module)) {
    arrays.emplace_back(entry.name, entry.is_count ? detail::count_array(entry.tensor.value())
                                                   : NpyArray::from(entry.tensor.value()));
  }
  write_npz(path, arrays);
}

template <class T>
void load_state(nn::Module<T>& module, const std::string& path) {
  const NpzArchive arrays = read_npz(path);
  std::map<std::string, const NpyArray*> in_file;
  for (const auto& [name, array] : arrays) in_file[name] = &array;

  std::string problems;
  auto note = [&](const std::string& what) { problems += (problems.empty() ? "" : "; ") + what; };
  auto entries = detail::state_entries(module);
  for (const auto& [name, tensor, is_count] : entries) {
    const auto found = in_file.find(name);
    if (found == in_file.end()) {
      note("missing " + detail::printable(name));
      continue;
    }
    const NpyArray& array = *found->second;
    if (array.shape() != tensor.shape()) {
      note(detail::printable(name) + " has shape " + shape_to_string(array.shape()) +
           " in the file but " + shape_to_string(tensor.shape()) + " in the model");
    }
    const DType expected = is_count ? DType::int64 : dtype_of<T>();
    if (array.dtype() != expected) {
      note(detail::printable(name) + " is " + dtype_name(array.dtype()) + " in the file but " +
           dtype_name(expected) + " in the model");
    }
    in_file.erase(found);
  }
  for (const auto& entry : in_file) note("unexpected " + detail::printable(entry.first));
  if (!problems.empty()) {
    throw IoError(detail::printable(path) +
                  " does not match the model (nothing was loaded): " + problems);
  }
  std::map<std::string, const NpyArray*> by_name;
  for (const auto& [name, array] : arrays) by_name[name] = &array;
  for (auto& entry : entries) entry.tensor.set_value(by_name.at(entry.name)->template to<T>());
}

template void save_state(const nn::Module<float>&, const std::string&);
template void save_state(const nn::Module<double>&, const std::string&);
template void load_state(nn::Module<float>&, const std::string&);
template void load_state(nn::Module<double>&, const std::string&);

}  // namespace tapegrad::io

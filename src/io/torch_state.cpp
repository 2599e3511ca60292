#include "tapegrad/io/torch_state.hpp"

#include <map>
#include <set>
#include <type_traits>
#include <xtensor/xmanipulation.hpp>

#include "names.hpp"
#include "state_entries.hpp"
#include "tapegrad/io/npz.hpp"
#include "tapegrad/nn/layers.hpp"

namespace tapegrad::io {

namespace {

// The parameters stored (in, out) here and (out, in) in PyTorch: every Linear's weight.
template <class T>
std::set<std::string> linear_weights(const nn::Module<T>& module) {
  std::set<std::string> names;
  for (const auto& [path, m] : module.named_modules()) {
    if (dynamic_cast<const nn::Linear<T>*>(m))
      names.insert(path.empty() ? "weight" : path + ".weight");
  }
  return names;
}

template <class T>
xt::xarray<T> transposed(const xt::xarray<T>& a) {
  return xt::transpose(a);
}

// Whether a file's element type may load into a T model.
template <class T>
bool dtype_accepted(DType file, Narrowing narrowing) {
  if (file == dtype_of<T>()) return true;
  if constexpr (std::is_same_v<T, double>) {
    return file == DType::float32;  // exact widening
  } else {
    return file == DType::float64 && narrowing == Narrowing::allow;
  }
}

// Said once after the dtype differences, not after each of them.
template <class T>
std::string dtype_advice() {
  if constexpr (std::is_same_v<T, double>) {
    return "(a double model takes float64 or float32: convert in PyTorch with model.double() "
           "before saving)";
  } else {
    return "(a float model takes float32: convert in PyTorch with model.float() before saving, or "
           "pass io::Narrowing::allow to round float64 to float32)";
  }
}

}  // namespace

template <class T>
void save_torch_state(const nn::Module<T>& module, const std::string& path) {
  const auto transpose = linear_weights(module);
  NpzArchive arrays;
  for (const auto& [name, tensor, is_count] : detail::state_entries(module)) {
    if (is_count) {
      arrays.emplace_back(name, detail::count_array(tensor.value()));
    } else {
      arrays.emplace_back(name, NpyArray::from(transpose.count(name) ? transposed(tensor.value())
                                                                     : tensor.value()));
    }
  }
  write_npz(path, arrays);
}

template <class T>
void load_torch_state(nn::Module<T>& module, const std::string& path, Narrowing narrowing) {
  const NpzArchive arrays = read_npz(path);
  std::map<std::string, const NpyArray*> unmatched;
  for (const auto& [name, array] : arrays) unmatched[name] = &array;
  const auto transpose = linear_weights(module);

  std::string problems;
  bool dtype_differs = false;
  auto note = [&](const std::string& what) { problems += (problems.empty() ? "" : "; ") + what; };
  auto parameters = detail::state_entries(module);
  std::vector<const NpyArray*> sources;
  for (const auto& [name, tensor, is_count] : parameters) {
    const auto found = unmatched.find(name);
    if (found == unmatched.end()) {
      note("missing " + detail::printable(name));
      continue;
    }
    const NpyArray& array = *found->second;
    const bool is_linear_weight = transpose.count(name) > 0;
    Shape expected = tensor.shape();
    if (is_linear_weight) std::swap(expected[0], expected[1]);
    if (array.shape() != expected) {
      note(detail::printable(name) + ": file has " + shape_to_string(array.shape()) +
           ", expected " + shape_to_string(expected) + (is_linear_weight ? " = (out, in)" : ""));
    }
    if (is_count) {
      if (array.dtype() != DType::int64) {
        note(detail::printable(name) + " is " + dtype_name(array.dtype()) +
             " in the file but int64 in the model (a count, as PyTorch's num_batches_tracked)");
      }
    } else if (!dtype_accepted<T>(array.dtype(), narrowing)) {
      note(detail::printable(name) + " is " + dtype_name(array.dtype()) + " in the file but " +
           dtype_name(dtype_of<T>()) + " in the model");
      dtype_differs = true;
    }
    sources.push_back(&array);
    unmatched.erase(found);
  }
  for (const auto& entry : unmatched) note("unexpected " + detail::printable(entry.first));
  if (dtype_differs) problems += " " + dtype_advice<T>();
  const std::string where = detail::printable(path);
  if (!problems.empty()) {
    const std::string what = " does not match the model as a PyTorch state_dict";
    throw IoError(where + what + " (nothing was loaded): " + problems);
  }

  // Every value converted before any is set, so a value too large for float32 changes nothing.
  std::vector<xt::xarray<T>> values;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const std::string& name = parameters[i].name;
    try {
      values.push_back(sources[i]->template to<T>());
    } catch (const ValueError& e) {
      throw IoError(where + ": " + detail::printable(name) + ": " + e.what() +
                    " (nothing was loaded)");
    }
    if (transpose.count(name)) values.back() = transposed(values.back());
  }
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    parameters[i].tensor.set_value(std::move(values[i]));
  }
}

template void save_torch_state(const nn::Module<float>&, const std::string&);
template void save_torch_state(const nn::Module<double>&, const std::string&);
template void load_torch_state(nn::Module<float>&, const std::string&, Narrowing);
template void load_torch_state(nn::Module<double>&, const std::string&, Narrowing);

}  // namespace tapegrad::io

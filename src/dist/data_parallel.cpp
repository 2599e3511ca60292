#include "tapegrad/dist/data_parallel.hpp"

#include <mpi.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::dist {

namespace {

template <class T>
MPI_Datatype mpi_type() {
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

// Every rank must hold the same number of values, or a collective call would mismatch (a
// hang or silently mixed numbers). One MPI_Allgather; every rank sees the same table, so
// every rank throws or none does.
void check_same_count(std::size_t count, const char* function) {
  const auto mine = static_cast<unsigned long long>(count);
  std::vector<unsigned long long> all(static_cast<std::size_t>(world_size()));
  MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all.data(), 1, MPI_UNSIGNED_LONG_LONG,
                MPI_COMM_WORLD);
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      throw DistError(std::string("dist::") + function + ": rank 0 has " + std::to_string(all[0]) +
                      " values, rank " + std::to_string(r) + " has " + std::to_string(all[r]) +
                      "; every rank must build the same model");
    }
  }
}

template <class T>
std::size_t value_count(const std::vector<Tensor<T>>& tensors) {
  std::size_t n = 0;
  for (const auto& t : tensors) n += t.value().size();
  return n;
}

// A zero gradient for a parameter that has none, through the tape (the only way to give a
// leaf a gradient): d(0 * sum(p))/dp = 0.
template <class T>
void give_zero_grad(Tensor<T>& parameter) {
  Tape tape;
  (sum(parameter) * T(0)).backward();
}

[[noreturn]] void throw_no_samples() {
  throw DistError(
      "dist::DataParallel::average_gradients: the ranks' sample counts sum to 0; "
      "expected at least one sample in the step");
}

}  // namespace

template <class T>
void broadcast_parameters(const std::vector<Tensor<T>>& tensors, int root) {
  if (root < 0 || root >= world_size()) {
    throw DistError("dist::broadcast_parameters: root " + std::to_string(root) +
                    " is not a rank; expected 0 to " + std::to_string(world_size() - 1));
  }
  const std::size_t count = value_count(tensors);
  check_same_count(count, "broadcast_parameters");
  std::vector<T> flat(count);
  const bool is_root = rank() == root;
  if (is_root) {
    std::size_t at = 0;
    for (const auto& t : tensors)
      at = std::copy(t.value().begin(), t.value().end(), flat.begin() + at) - flat.begin();
  }
  // In chunks of at most 1 Mi values: an int count, and a few MiB per call.
  constexpr std::size_t chunk = std::size_t{1} << 20;
  for (std::size_t start = 0; start < count; start += chunk) {
    MPI_Bcast(flat.data() + start, static_cast<int>(std::min(chunk, count - start)), mpi_type<T>(),
              root, MPI_COMM_WORLD);
  }
  if (is_root) return;
  std::size_t at = 0;
  for (auto t : tensors) {
    auto& value = t.mutable_value();
    std::copy_n(flat.begin() + static_cast<std::ptrdiff_t>(at), value.size(), value.begin());
    at += value.size();
  }
}

template <class T>
void broadcast_parameters(const nn::Module<T>& module, int root) {
  auto tensors = module.parameters();
  for (auto& b : module.buffers()) tensors.push_back(b);
  broadcast_parameters(tensors, root);
}

DataParallelOptions& DataParallelOptions::bucket_bytes(std::size_t bytes) {
  if (bytes == 0)
    throw ValueError(
        "DataParallelOptions::bucket_bytes: 0 bytes; expected a bucket size of at least 1");
  bucket_bytes_ = bytes;
  return *this;
}

template <class T>
DataParallel<T>::DataParallel(const nn::Module<T>& module, const DataParallelOptions& options)
    : DataParallel(module.parameters(), options) {}

template <class T>
DataParallel<T>::DataParallel(std::vector<Tensor<T>> parameters, const DataParallelOptions& options)
    : parameters_(std::move(parameters)), options_(options) {
  check_same_count(value_count(parameters_), "DataParallel");
  // Whole tensors per bucket, a new bucket when the next tensor would overflow this one.
  const std::size_t capacity = std::max<std::size_t>(1, options_.bucket_bytes() / sizeof(T));
  std::size_t in_bucket = 0, largest = 0;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const std::size_t n = parameters_[i].value().size();
    if (bucket_starts_.empty() || (in_bucket > 0 && in_bucket + n > capacity)) {
      bucket_starts_.push_back(i);
      in_bucket = 0;
    }
    in_bucket += n;
    largest = std::max(largest, in_bucket);
  }
  // One more value: the first bucket carries the local sample count when weighting.
  if (largest + 1 > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw DistError(
        "dist::DataParallel: a parameter of " + std::to_string(largest) +
        " values exceeds MPI's int count; expected fewer than 2^31 - 1 values per tensor");
  }
  buffer_.resize(largest + 1);
}

template <class T>
void DataParallel<T>::average_gradients() {
  reduce(1, false);
}

template <class T>
void DataParallel<T>::average_gradients(std::size_t local_samples) {
  reduce(static_cast<double>(local_samples), true);
}

template <class T>
void DataParallel<T>::reduce(double weight, bool weighted) {
  if (weighted && world_size() == 1 && weight == 0) throw_no_samples();
  if (world_size() == 1) {
    // One rank: the average is its own gradient. Copying it out, through MPI and back would
    // cost three passes over the gradients (a third of a small MLP's step) and round it twice.
    for (auto& p : parameters_) {
      if (!p.has_grad()) give_zero_grad(p);
    }
    return;
  }
  // Plain loops on the arrays' storage: gradients are contiguous, and xtensor's iterators
  // step through a shape index per element (slower than the all-reduce itself).
  const T local_weight = static_cast<T>(weight);
  double divisor = weighted ? 0.0 : static_cast<double>(world_size());
  for (std::size_t b = 0; b < bucket_starts_.size(); ++b) {
    const std::size_t first = bucket_starts_[b];
    const std::size_t last =
        b + 1 < bucket_starts_.size() ? bucket_starts_[b + 1] : parameters_.size();
    std::size_t n = 0;
    for (std::size_t i = first; i < last; ++i) {
      const auto& p = parameters_[i];
      const std::size_t size = p.value().size();
      T* out = buffer_.data() + n;
      if (!p.has_grad()) {
        std::fill_n(out, size, T(0));
      } else if (weighted) {
        // Rank r sends n_r g_r: the sum over ranks is then the global batch's gradient sum.
        const T* g = p.grad().data();
        for (std::size_t k = 0; k < size; ++k) out[k] = g[k] * local_weight;
      } else {
        std::copy_n(p.grad().data(), size, out);
      }
      n += size;
    }
    if (weighted && b == 0) buffer_[n++] = local_weight;

    const double start = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(n), mpi_type<T>(), MPI_SUM,
                  MPI_COMM_WORLD);
    communication_seconds_ += MPI_Wtime() - start;

    if (weighted && b == 0) {
      divisor = static_cast<double>(buffer_[--n]);
      if (divisor == 0) throw_no_samples();
    }
    const T total = static_cast<T>(divisor);
    const T* sums = buffer_.data();
    for (std::size_t i = first; i < last; ++i) {
      auto& p = parameters_[i];
      if (!p.has_grad()) give_zero_grad(p);
      T* g = p.mutable_grad().data();
      for (std::size_t k = 0, size = p.value().size(); k < size; ++k) g[k] = sums[k] / total;
      sums += p.value().size();
    }
  }
}

template void broadcast_parameters(const nn::Module<float>&, int);
template void broadcast_parameters(const nn::Module<double>&, int);
template void broadcast_parameters(const std::vector<Tensor<float>>&, int);
template void broadcast_parameters(const std::vector<Tensor<double>>&, int);
template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace tapegrad::dist

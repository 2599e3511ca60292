#include "tapegrad/dist/data_parallel.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>

#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::dist {

namespace {

template <class T>
MPI_Datatype mpi_type() {
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

std::string named(const std::vector<std::string>& names, std::size_t i) {
  return i < names.size() && !names[i].empty() ? " (" + names[i] + ")" : "";
}

// ---- the ranks' lists, compared before the first exchange ----

// What every rank must agree on, as integers: the element size, the bucket size (0 for a
// broadcast), the number of tensors, then each tensor's number of axes and extents.
template <class T>
std::vector<long long> signature(const std::vector<Tensor<T>>& tensors, std::size_t bucket_bytes) {
  std::vector<long long> out{static_cast<long long>(sizeof(T)),
                             static_cast<long long>(bucket_bytes),
                             static_cast<long long>(tensors.size())};
  for (const auto& t : tensors) {
    out.push_back(static_cast<long long>(t.dim()));
    for (const std::size_t extent : t.shape()) out.push_back(static_cast<long long>(extent));
  }
  return out;
}

// The shapes a signature lists, from its fourth entry.
std::vector<Shape> shapes_of(const long long* signature) {
  std::vector<Shape> shapes(static_cast<std::size_t>(signature[2]));
  const long long* at = signature + 3;
  for (auto& shape : shapes) {
    const auto axes = static_cast<std::size_t>(*at++);
    for (std::size_t a = 0; a < axes; ++a) shape.push_back(static_cast<std::size_t>(*at++));
  }
  return shapes;
}

const char* element_type(long long size) { return size == 4 ? "float32" : "float64"; }

// The first way rank r's signature differs from rank 0's, as the end of a message; empty if
// none does.
std::string first_difference(const long long* mine, const long long* theirs, int r,
                             const std::vector<std::string>& names, const char* what) {
  const std::string other = "rank " + std::to_string(r);
  if (mine[0] != theirs[0]) {
    return "rank 0 holds " + std::string(element_type(mine[0])) + " values, " + other + " " +
           element_type(theirs[0]);
  }
  if (mine[1] != theirs[1]) {
    return "bucket_bytes is " + std::to_string(mine[1]) + " on rank 0 but " +
           std::to_string(theirs[1]) + " on " + other + "; every rank must cut the same buckets";
  }
  const auto a = shapes_of(mine), b = shapes_of(theirs);
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] != b[i]) {
      return std::string(what) + " " + std::to_string(i) + named(names, i) + " has shape " +
             shape_to_string(a[i]) + " on rank 0 but " + shape_to_string(b[i]) + " on " + other +
             "; every rank must build the same model";
    }
  }
  if (a.size() != b.size()) {
    const auto counted = [what](std::size_t n) {
      return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    return "rank 0 has " + counted(a.size()) + ", " + other + " has " + counted(b.size()) +
           "; every rank must build the same model";
  }
  return "";
}

// Every rank's list of tensors must match rank 0's, or the exchanges would mismatch (a hang,
// MPI_ERR_TRUNCATE, or gradients mixed across tensors). One MPI_Allgather of the lengths and
// one MPI_Allgatherv of the lists; every rank sees the same table, so every rank throws or
// none does.
template <class T>
void compare_ranks(const std::vector<Tensor<T>>& tensors, const std::vector<std::string>& names,
                   std::size_t bucket_bytes, const char* function, const char* what) {
  const auto mine = signature(tensors, bucket_bytes);
  const int n = world_size();
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(n)), starts(static_cast<std::size_t>(n));
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  long long total = 0;
  for (int r = 0; r < n; ++r) {
    starts[r] = static_cast<int>(total);
    total += lengths[r];
  }
  std::vector<long long> all(static_cast<std::size_t>(total));
  MPI_Allgatherv(mine.data(), length, MPI_LONG_LONG, all.data(), lengths.data(), starts.data(),
                 MPI_LONG_LONG, MPI_COMM_WORLD);
  for (int r = 1; r < n; ++r) {
    const std::string difference =
        first_difference(all.data(), all.data() + starts[r], r, names, what);
    if (!difference.empty()) throw DistError(std::string("dist::") + function + ": " + difference);
  }
}

// ---- the header every exchange starts with ----

// Summed over the ranks (MPI_SUM of 64-bit integers, exact).
enum Slot { kSamples, kWeighted, kLeaving, kLeavingRank, kRefusing, kRefusingRank, kSlots };

// Ends the job with `message`: a pending MPI exchange cannot be cancelled.
[[noreturn]] void end_job(const std::string& message) {
  std::fprintf(stderr, "rank %d of %d: %s; aborting the job\n", rank(), world_size(),
               message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // not reached: MPI_Abort ends the process
}

// Starts summing `header` over the ranks of `comm` (MPI_SUM of 64-bit integers, exact).
MPI_Request start_sum(long long (&header)[kSlots], MPI_Comm comm) {
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, header, kSlots, MPI_LONG_LONG, MPI_SUM, comm, &request);
  return request;
}

// Waits for `request`, polling (MPI_Test) so that the wait is bounded: after `timeout`
// seconds the job ends with a message, `where()` naming the call.
template <class Where>
void wait_or_end(MPI_Request& request, double timeout, Where where) {
  const double start = MPI_Wtime();
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    const double waited = MPI_Wtime() - start;
    if (waited > timeout) {
      end_job(where() + ": no answer from every rank within " + number_to_string(timeout) +
              " s (DataParallelOptions::timeout): a rank stopped calling average_gradients and "
              "waits elsewhere, or is stuck; every rank must call it the same number of times");
    }
    if (waited > 1e-3) std::this_thread::yield();  // a long wait: leave the core to others
  }
}

std::string ranks_named(long long count, long long rank_sum) {
  return count == 1 ? "rank " + std::to_string(rank_sum) : std::to_string(count) + " ranks";
}

// A zero gradient for a parameter that has none, through the tape (the only way to give a
// leaf a gradient): d(0 * sum(p))/dp = 0.
template <class T>
void give_zero_grad(Tensor<T>& parameter) {
  Tape tape;
  (sum(parameter) * T(0)).backward();
}

template <class T>
void broadcast_named(const std::vector<Tensor<T>>& tensors, const std::vector<std::string>& names,
                     int root) {
  if (root < 0 || root >= world_size()) {
    throw DistError("dist::broadcast_parameters: root " + std::to_string(root) +
                    " is not a rank; expected 0 to " + std::to_string(world_size() - 1));
  }
  compare_ranks(tensors, names, 0, "broadcast_parameters", "tensor");
  std::size_t count = 0;
  for (const auto& t : tensors) count += t.size();
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

// Copies the gradients of parameters [first, last) into `out` (zeros for one without a
// gradient), times `weight` unless it is 1; returns the number of values. Plain loops on the
// arrays' storage: gradients are contiguous, and xtensor's iterators step through a shape
// index per element (slower than the all-reduce itself).
template <class T>
std::size_t pack(const std::vector<Tensor<T>>& parameters, std::size_t first, std::size_t last,
                 T weight, T* out) {
  std::size_t count = 0;
  for (std::size_t i = first; i < last; ++i) {
    const auto& p = parameters[i];
    const std::size_t size = p.size();
    if (!p.has_grad()) {
      std::fill_n(out + count, size, T(0));
    } else if (weight != T(1)) {
      const T* g = p.grad().data();
      for (std::size_t k = 0; k < size; ++k) out[count + k] = g[k] * weight;
    } else {
      std::copy_n(p.grad().data(), size, out + count);
    }
    count += size;
  }
  return count;
}

// The gradients of parameters [first, last) become `sums` / `total`.
template <class T>
void unpack(std::vector<Tensor<T>>& parameters, std::size_t first, std::size_t last, const T* sums,
            T total) {
  for (std::size_t i = first; i < last; ++i) {
    auto& p = parameters[i];
    if (!p.has_grad()) give_zero_grad(p);
    T* g = p.mutable_grad().data();
    for (std::size_t k = 0, size = p.size(); k < size; ++k) g[k] = sums[k] / total;
    sums += p.size();
  }
}

// Throws, on every rank alike, when the summed header says the ranks disagree.
void check_header(const long long (&header)[kSlots], int n, std::size_t exchange) {
  const std::string who = "dist::DataParallel::average_gradients: ";
  const std::string exchange_name = "exchange " + std::to_string(exchange);
  if (header[kRefusing] > 0) {
    throw DistError(who + ranks_named(header[kRefusing], header[kRefusingRank]) + " refused " +
                    exchange_name +
                    " (a parameter or gradient of another shape: see its message); every rank "
                    "stops there");
  }
  if (header[kLeaving] > 0) {
    throw DistError(who + ranks_named(header[kLeaving], header[kLeavingRank]) +
                    " stopped calling average_gradients (" +
                    (header[kLeaving] == 1 ? "its" : "their") +
                    " DataParallel was destroyed) while this rank is in " + exchange_name +
                    "; every rank must call it the same number of times");
  }
  if (header[kWeighted] != 0 && header[kWeighted] != n) {
    throw DistError(who + exchange_name + ": " + std::to_string(header[kWeighted]) + " of " +
                    std::to_string(n) +
                    " ranks called average_gradients(local_samples), the others "
                    "average_gradients(); every rank must call the same one");
  }
}

[[noreturn]] void throw_no_samples() {
  throw DistError(
      "dist::DataParallel::average_gradients: the ranks' sample counts sum to 0; "
      "expected at least one sample in the step");
}

}  // namespace

template <class T>
struct DataParallel<T>::Exchange {
  MPI_Comm comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: no other call can match ours
  std::size_t count = 0;          // header exchanges made
  int uncaught = 0;               // std::uncaught_exceptions() at construction
};

template <class T>
void broadcast_parameters(const std::vector<Tensor<T>>& tensors, int root) {
  broadcast_named(tensors, {}, root);
}

template <class T>
void broadcast_parameters(const nn::Module<T>& module, int root) {
  std::vector<Tensor<T>> tensors;
  std::vector<std::string> names;
  for (const auto& [name, p] : module.named_parameters()) {
    tensors.push_back(p);
    names.push_back(name);
  }
  for (const auto& [name, b] : module.named_buffers()) {
    tensors.push_back(b);
    names.push_back(name);
  }
  broadcast_named(tensors, names, root);
}

DataParallelOptions& DataParallelOptions::bucket_bytes(std::size_t bytes) {
  if (bytes == 0)
    throw ValueError(
        "DataParallelOptions::bucket_bytes: 0 bytes; expected a bucket size of at least 1");
  bucket_bytes_ = bytes;
  return *this;
}

DataParallelOptions& DataParallelOptions::timeout(double seconds) {
  if (!(seconds > 0)) {
    throw ValueError("DataParallelOptions::timeout: " + number_to_string(seconds) +
                     " s; expected a positive number of seconds (inf: no timeout)");
  }
  timeout_ = seconds;
  return *this;
}

namespace {

template <class T>
std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor<T>>>& named) {
  std::vector<std::string> names;
  for (const auto& entry : named) names.push_back(entry.first);
  return names;
}

}  // namespace

template <class T>
DataParallel<T>::DataParallel(const nn::Module<T>& module, const DataParallelOptions& options)
    : DataParallel(module.parameters(), names_of(module.named_parameters()), options) {}

template <class T>
DataParallel<T>::DataParallel(std::vector<Tensor<T>> parameters, const DataParallelOptions& options)
    : DataParallel(std::move(parameters), {}, options) {}

template <class T>
DataParallel<T>::DataParallel(std::vector<Tensor<T>> parameters, std::vector<std::string> names,
                              const DataParallelOptions& options)
    : parameters_(std::move(parameters)), names_(std::move(names)), options_(options) {
  compare_ranks(parameters_, names_, options_.bucket_bytes(), "DataParallel", "parameter");
  // Whole tensors per bucket, a new bucket when the next tensor would overflow this one.
  const std::size_t capacity = std::max<std::size_t>(1, options_.bucket_bytes() / sizeof(T));
  std::size_t in_bucket = 0, largest = 0;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    shapes_.push_back(parameters_[i].shape());
    const std::size_t n = parameters_[i].size();
    if (bucket_starts_.empty() || (in_bucket > 0 && in_bucket + n > capacity)) {
      bucket_starts_.push_back(i);
      in_bucket = 0;
    }
    in_bucket += n;
    largest = std::max(largest, in_bucket);
  }
  if (largest > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw DistError(
        "dist::DataParallel: a parameter of " + std::to_string(largest) +
        " values exceeds MPI's int count; expected fewer than 2^31 - 1 values per tensor");
  }
  buffer_.resize(largest);
  exchange_ = std::make_unique<Exchange>();
  exchange_->uncaught = std::uncaught_exceptions();
  MPI_Comm_dup(MPI_COMM_WORLD, &exchange_->comm);
}

template <class T>
DataParallel<T>::~DataParallel() {
  if (!running()) return;  // after MPI_Finalize nothing can be exchanged or freed
  const int n = world_size();
  // While an exception unwinds this rank is on its way to run_or_abort() (or a handler):
  // no exchange, which could wait for ranks that are waiting for this one.
  if (n > 1 && std::uncaught_exceptions() <= exchange_->uncaught) {
    long long header[kSlots] = {0, 0, 1, rank(), 0, 0};
    MPI_Request request = start_sum(header, exchange_->comm);
    wait_or_end(request, options_.timeout(),
                [] { return std::string("dist::DataParallel (destroyed)"); });
    if (header[kLeaving] < n) {
      const long long staying = n - header[kLeaving];
      end_job("dist::DataParallel: rank " + std::to_string(rank()) +
              " stopped calling average_gradients (its DataParallel was destroyed) after " +
              std::to_string(exchange_->count) + " exchanges while " + std::to_string(staying) +
              (staying == 1 ? " other rank is" : " other ranks are") + " in exchange " +
              std::to_string(exchange_->count + 1) +
              "; every rank must call it the same number of times");
    }
  }
  MPI_Comm_free(&exchange_->comm);
}

template <class T>
void DataParallel<T>::average_gradients() {
  reduce(0, false);
}

template <class T>
void DataParallel<T>::average_gradients(std::size_t local_samples) {
  reduce(local_samples, true);
}

template <class T>
std::string DataParallel<T>::shape_problem() const {
  const std::string who = "dist::DataParallel::average_gradients: parameter ";
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const auto& p = parameters_[i];
    if (p.shape() != shapes_[i]) {
      return who + std::to_string(i) + named(names_, i) + " has shape " +
             shape_to_string(p.shape()) + " but DataParallel was made for " +
             shape_to_string(shapes_[i]) +
             ": the buckets are cut for the shapes at construction; make a new DataParallel "
             "(on every rank) after resizing a parameter";
    }
    if (p.has_grad() && p.grad().shape() != p.shape()) {
      return who + std::to_string(i) + named(names_, i) + " has shape " +
             shape_to_string(p.shape()) + " but its gradient has shape " +
             shape_to_string(p.grad().shape()) +
             "; expected a gradient of the parameter's shape (was it changed through "
             "mutable_grad()?)";
    }
  }
  return "";
}

template <class T>
void DataParallel<T>::reduce(std::size_t samples, bool weighted) {
  const std::string problem = shape_problem();
  const int n = world_size();
  if (n == 1) {
    // One rank: the average is its own gradient. Copying it out, through MPI and back would
    // cost three passes over the gradients (a third of a small MLP's step) and round it twice.
    if (!problem.empty()) throw ShapeError(problem);
    if (weighted && samples == 0) throw_no_samples();
    for (auto& p : parameters_) {
      if (!p.has_grad()) give_zero_grad(p);
    }
    return;
  }
  const std::size_t exchange = ++exchange_->count;
  long long header[kSlots] = {weighted ? static_cast<long long>(samples) : 0,
                              weighted ? 1 : 0,
                              0,
                              0,
                              problem.empty() ? 0 : 1,
                              problem.empty() ? 0 : rank()};
  // Rank r sends n_r g_r when weighting: the sum over ranks is the global batch's gradient sum.
  const T weight = weighted ? static_cast<T>(samples) : T(1);
  const auto bucket_end = [&](std::size_t b) {
    return b + 1 < bucket_starts_.size() ? bucket_starts_[b + 1] : parameters_.size();
  };
  double start = MPI_Wtime();
  MPI_Request request = start_sum(header, exchange_->comm);
  communication_seconds_ += MPI_Wtime() - start;
  // The first bucket is packed while the header travels.
  std::size_t count =
      problem.empty() ? pack(parameters_, 0, bucket_end(0), weight, buffer_.data()) : 0;
  start = MPI_Wtime();
  wait_or_end(request, options_.timeout(), [&] {
    return "dist::DataParallel::average_gradients (exchange " + std::to_string(exchange) + ")";
  });
  communication_seconds_ += MPI_Wtime() - start;
  if (!problem.empty()) throw ShapeError(problem);
  check_header(header, n, exchange);
  if (weighted && header[kSamples] == 0) throw_no_samples();
  const T total = static_cast<T>(weighted ? static_cast<double>(header[kSamples]) : n);

  for (std::size_t b = 0; b < bucket_starts_.size(); ++b) {
    if (b > 0) count = pack(parameters_, bucket_starts_[b], bucket_end(b), weight, buffer_.data());
    start = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(count), mpi_type<T>(), MPI_SUM,
                  exchange_->comm);
    communication_seconds_ += MPI_Wtime() - start;
    unpack(parameters_, bucket_starts_[b], bucket_end(b), buffer_.data(), total);
  }
}

template void broadcast_parameters(const nn::Module<float>&, int);
template void broadcast_parameters(const nn::Module<double>&, int);
template void broadcast_parameters(const std::vector<Tensor<float>>&, int);
template void broadcast_parameters(const std::vector<Tensor<double>>&, int);
template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace tapegrad::dist

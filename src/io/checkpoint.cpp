#include "tapegrad/io/checkpoint.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>

#include "names.hpp"
#include "state_entries.hpp"
#include "tapegrad/io/npz.hpp"

namespace tapegrad::io {

namespace {

constexpr std::int64_t kFormat = 1;

// ---- writing members ----

template <class Scalar>
NpyArray scalar_array(DType dtype, Scalar value) {
  std::vector<unsigned char> bytes(sizeof value);
  std::memcpy(bytes.data(), &value, sizeof value);
  return NpyArray(dtype, Shape{}, std::move(bytes));
}
NpyArray int64_array(std::int64_t value) { return scalar_array(DType::int64, value); }
NpyArray float64_array(double value) { return scalar_array(DType::float64, value); }
// A generator's 64 bits, as the int64 with the same bits (NumPy's .npy has uint64, the
// reader here does not).
NpyArray bits_array(std::uint64_t value) { return scalar_array(DType::int64, value); }
NpyArray text_array(const std::string& text) {
  return NpyArray(DType::uint8, Shape{text.size()},
                  std::vector<unsigned char>(text.begin(), text.end()));
}
NpyArray counts_array(const std::vector<std::size_t>& counts) {
  xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({counts.size()});
  for (std::size_t i = 0; i < counts.size(); ++i) out(i) = static_cast<std::int64_t>(counts[i]);
  return NpyArray::from(out);
}

// ---- reading members ----

// The archive's members by name, handing each out once and noting every problem met, so
// that one message can list all of them; the members never taken are unexpected.
class Reader {
 public:
  explicit Reader(const NpzArchive& arrays) {
    for (const auto& [name, array] : arrays) unread_[name] = &array;
  }

  // Every problem passes here, names from the file in it: escaped once, for all of them.
  void note(const std::string& problem) { problems_.push_back(detail::printable(problem)); }
  const std::vector<std::string>& problems() const { return problems_; }
  bool has(const std::string& name) const { return unread_.count(name) != 0; }
  // Marks a member as read without looking at it (its problem is already noted).
  void skip(const std::string& name) { unread_.erase(name); }

  // The member `name` if it has `dtype` and, unless null, `shape`; otherwise notes why not.
  const NpyArray* take(const std::string& name, DType dtype, const Shape* shape = nullptr) {
    const auto found = unread_.find(name);
    if (found == unread_.end()) {
      note(name + " is missing");
      return nullptr;
    }
    const NpyArray* array = found->second;
    unread_.erase(found);
    bool ok = true;
    if (array->dtype() != dtype) {
      note(name + " is " + dtype_name(array->dtype()) + ", expected " + dtype_name(dtype));
      ok = false;
    }
    if (shape && array->shape() != *shape) {
      note(name + " has shape " + shape_to_string(array->shape()) + ", expected " +
           shape_to_string(*shape));
      ok = false;
    }
    return ok ? array : nullptr;
  }

  std::optional<std::int64_t> int64_scalar(const std::string& name) {
    const Shape scalar;
    const NpyArray* array = take(name, DType::int64, &scalar);
    if (!array) return std::nullopt;
    std::int64_t value;
    std::memcpy(&value, array->bytes().data(), sizeof value);
    return value;
  }
  // A count or position: an int64 that is not negative.
  std::optional<std::size_t> count(const std::string& name) {
    const auto value = int64_scalar(name);
    if (value && *value < 0) {
      note(name + " is " + std::to_string(*value) + ", expected a count >= 0");
      return std::nullopt;
    }
    return value ? std::optional<std::size_t>(static_cast<std::size_t>(*value)) : std::nullopt;
  }
  std::optional<std::uint64_t> bits(const std::string& name) {
    const auto value = int64_scalar(name);
    if (!value) return std::nullopt;
    std::uint64_t bits;
    std::memcpy(&bits, &*value, sizeof bits);
    return bits;
  }
  std::optional<double> float64_scalar(const std::string& name) {
    const Shape scalar;
    const NpyArray* array = take(name, DType::float64, &scalar);
    if (!array) return std::nullopt;
    double value;
    std::memcpy(&value, array->bytes().data(), sizeof value);
    return value;
  }
  std::optional<std::string> text(const std::string& name) {
    const NpyArray* array = take(name, DType::uint8);
    if (!array) return std::nullopt;
    if (array->shape().size() != 1) {
      note(name + " has shape " + shape_to_string(array->shape()) + ", expected a 1-d text");
      return std::nullopt;
    }
    return std::string(array->bytes().begin(), array->bytes().end());
  }

  // The names of the unread members that start with `prefix`, in name order.
  std::vector<std::string> names_under(const std::string& prefix) const {
    std::vector<std::string> names;
    for (auto it = unread_.lower_bound(prefix); it != unread_.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      names.push_back(it->first);
    }
    return names;
  }

  // How many groups "<kind>0/", "<kind>1/", ... the unread members name: the largest index + 1.
  std::size_t group_count(const std::string& kind) const {
    std::size_t count = 0;
    for (const auto& name : names_under(kind)) {
      const std::size_t digits_end = name.find('/', kind.size());
      if (digits_end == std::string::npos || digits_end == kind.size()) continue;
      const std::string digits = name.substr(kind.size(), digits_end - kind.size());
      if (digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
        continue;
      count = std::max(count, static_cast<std::size_t>(std::stoul(digits)) + 1);
    }
    return count;
  }

  // Marks the groups "<kind>I/" for I from `first` to `count` - 1 as read: the group count's
  // difference is noted once instead of each of their members.
  void skip_groups(const std::string& kind, std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < count; ++i) {
      for (const auto& name : names_under(kind + std::to_string(i) + "/")) skip(name);
    }
  }

  // Notes every member not taken as unexpected.
  void note_unread() {
    for (const auto& entry : unread_) note("unexpected member " + detail::printable(entry.first));
  }

 private:
  std::map<std::string, const NpyArray*> unread_;
  std::vector<std::string> problems_;
};

std::string counted(std::size_t n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// Reads optimizerI/... into a state; what is missing or malformed is noted.
template <class T>
optim::OptimizerState<T> read_optimizer(Reader& reader, const std::string& prefix) {
  optim::OptimizerState<T> state;
  state.type = reader.text(prefix + "type").value_or("?");
  state.learning_rate = reader.float64_scalar(prefix + "learning_rate").value_or(0.0);
  for (const auto& name : reader.names_under(prefix + "setting/")) {
    if (const auto value = reader.float64_scalar(name)) {
      state.settings.emplace_back(name.substr(prefix.size() + 8), *value);
    }
  }
  for (const auto& name : reader.names_under(prefix + "count/")) {
    const NpyArray* array = reader.take(name, DType::int64);
    if (!array) continue;
    if (array->shape().size() != 1) {
      reader.note(name + " has shape " + shape_to_string(array->shape()) + ", expected (P,)");
      continue;
    }
    const auto values = array->to<std::int64_t>();
    std::vector<std::size_t> counts;
    for (const auto v : values) {
      if (v < 0) reader.note(name + " holds " + std::to_string(v) + ", expected counts >= 0");
      counts.push_back(static_cast<std::size_t>(std::max<std::int64_t>(v, 0)));
    }
    state.counts.emplace_back(name.substr(prefix.size() + 6), std::move(counts));
  }
  // array/NAME/P: gathered by NAME, then placed by P, which must run 0, 1, ..., n-1.
  std::map<std::string, std::map<std::size_t, xt::xarray<T>>> arrays;
  const std::string array_prefix = prefix + "array/";
  for (const auto& name : reader.names_under(array_prefix)) {
    const std::size_t slash = name.rfind('/');
    const std::string digits = name.substr(slash + 1);
    if (slash < array_prefix.size() || digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;  // left unread: reported as unexpected
    }
    const NpyArray* array = reader.take(name, dtype_of<T>());
    if (array) {
      arrays[name.substr(array_prefix.size(), slash - array_prefix.size())][std::stoul(digits)] =
          array->to<T>();
    }
  }
  for (auto& [name, by_index] : arrays) {
    std::vector<xt::xarray<T>> values;
    for (auto& [index, value] : by_index) {
      if (index != values.size()) {
        reader.note(array_prefix + name + "/" + std::to_string(values.size()) + " is missing");
        break;
      }
      values.push_back(std::move(value));
    }
    state.arrays.emplace_back(name, std::move(values));
  }
  return state;
}

optim::SchedulerState read_scheduler(Reader& reader, const std::string& prefix) {
  optim::SchedulerState state;
  state.type = reader.text(prefix + "type").value_or("?");
  for (const auto& name : reader.names_under(prefix + "setting/")) {
    if (const auto value = reader.float64_scalar(name)) {
      state.settings.emplace_back(name.substr(prefix.size() + 8), *value);
    }
  }
  for (const auto& name : reader.names_under(prefix + "value/")) {
    if (const auto value = reader.float64_scalar(name)) {
      state.values.emplace_back(name.substr(prefix.size() + 6), *value);
    }
  }
  return state;
}

// Notes each of `differences` with `who` before it.
void note_all(Reader& reader, const std::string& who, const std::vector<std::string>& differences) {
  for (const auto& difference : differences) reader.note(who + ": " + difference);
}

// The model's values: every parameter and buffer by name, shape and element type, as
// load_state() reads them (null for one missing or mismatched, with the problem noted).
template <class T>
std::vector<const NpyArray*> read_model(Reader& reader,
                                        const std::vector<detail::StateEntry<T>>& entries) {
  std::vector<const NpyArray*> values;
  for (const auto& entry : entries) {
    const Shape shape(entry.tensor.shape().begin(), entry.tensor.shape().end());
    const DType dtype = entry.is_count ? DType::int64 : dtype_of<T>();
    const std::string name = "model/" + entry.name;
    if (!reader.has(name)) {
      reader.note("the model's " + detail::printable(entry.name) +
                  " is missing (another architecture?)");
      values.push_back(nullptr);
      continue;
    }
    values.push_back(reader.take(name, dtype, &shape));
  }
  for (const auto& name : reader.names_under("model/")) {
    reader.note("unexpected " + detail::printable(name) + ": the model has no " +
                detail::printable(name.substr(6)) + " (another architecture?)");
    reader.skip(name);
  }
  return values;
}

// The number of groups "<kind>I/" in the file; a number other than `ours` is noted, and the
// groups beyond ours are not read.
std::size_t read_group_count(Reader& reader, const std::string& kind, std::size_t ours) {
  const std::size_t in_file = reader.group_count(kind);
  reader.skip_groups(kind, ours, in_file);
  if (in_file != ours) {
    reader.note("the file holds " + counted(in_file, kind == "loader" ? "data loader" : kind) +
                ", this run " + std::to_string(ours));
  }
  return in_file;
}

// The generators' states, in the order of `generators` (0 for one missing, with the problem
// noted); a generator the run does not have is noted too.
std::vector<std::uint64_t> read_generators(
    Reader& reader, const std::vector<std::pair<std::string, Generator*>>& generators) {
  std::vector<std::uint64_t> states;
  std::string names;
  for (const auto& [name, generator] : generators) {
    states.push_back(reader.bits("generator/" + name).value_or(0));
    names += (names.empty() ? "" : ", ") + name;
  }
  for (const auto& name : reader.names_under("generator/")) {
    reader.note("unexpected generator " + detail::printable(name.substr(10)) +
                " (this run's generators: " + (names.empty() ? "none" : names) + ")");
    reader.skip(name);
  }
  return states;
}

// This process's states of the per-rank generators, in the order of `generators` (0 for one
// missing, with the problem noted). Every rank's entries `rankR/generator/NAME` are read and
// checked, so that a file good for one rank is good for all. With another world size in the
// file (already noted) they are skipped: their number is bound to differ.
std::vector<std::uint64_t> read_rank_generators(
    Reader& reader, const std::vector<std::pair<std::string, Generator*>>& generators,
    bool same_world_size, std::size_t world_size, std::size_t rank) {
  std::vector<std::uint64_t> states(generators.size(), 0);
  if (!same_world_size) {
    for (const auto& name : reader.names_under("rank")) reader.skip(name);
    return states;
  }
  std::string names;
  for (std::size_t r = 0; r < world_size; ++r) {
    for (std::size_t g = 0; g < generators.size(); ++g) {
      const auto state =
          reader.bits("rank" + std::to_string(r) + "/generator/" + generators[g].first);
      if (r == rank) states[g] = state.value_or(0);
    }
  }
  for (const auto& [name, generator] : generators) names += (names.empty() ? "" : ", ") + name;
  for (const auto& name : reader.names_under("rank")) {
    reader.note("unexpected " + detail::printable(name) +
                " (this run's per-rank generators: " + (names.empty() ? "none" : names) +
                ", ranks 0 to " + std::to_string(world_size - 1) + ")");
    reader.skip(name);
  }
  return states;
}

// samplerI/...: its position, after comparing the sizes that fix its batches with `sampler`'s.
data::DistributedSampler::Position read_sampler(Reader& reader, std::size_t i,
                                                const data::DistributedSampler& sampler) {
  const std::string prefix = "sampler" + std::to_string(i) + "/";
  const auto compare = [&](const std::string& what, std::size_t ours) {
    const auto in_file = reader.count(prefix + what);
    if (in_file && *in_file != ours) {
      std::string readable = what;
      std::replace(readable.begin(), readable.end(), '_', ' ');
      reader.note("sampler " + std::to_string(i) + ": " + readable + " is " +
                  std::to_string(*in_file) + " in the file but " + std::to_string(ours) + " here");
    }
  };
  compare("dataset_size", sampler.dataset_size());
  compare("local_batch_size", sampler.local_batch_size());
  compare("world_size", sampler.world_size());
  const auto drawn = reader.count(prefix + "epochs_drawn");
  const auto random_state = reader.bits(prefix + "random_state");
  return {drawn.value_or(0), random_state.value_or(0)};
}

// The place of a loader or sampler (`what`, e.g. "loader 0") at the start of the epoch in
// progress, so that the resumed run draws that epoch again and skips the batches done.
template <class Source>
auto epoch_start(const Source& source, const std::string& what, const TrainingPosition& position) {
  if (source.epochs_drawn() == position.epoch + 1) return source.latest_epoch_start();
  if (source.epochs_drawn() == position.epoch && position.step == 0) return source.position();
  throw ValueError(
      "Checkpoint::save: " + what + " has drawn " + counted(source.epochs_drawn(), "epoch") +
      ", but the position is epoch " + std::to_string(position.epoch) + " (from 0), step " +
      std::to_string(position.step) + ": expected " + std::to_string(position.epoch + 1) +
      " drawn (or " + std::to_string(position.epoch) + " at step 0)");
}

// Refuses a generator name that cannot be a member name, or a name or generator added before
// under either kind (shared or per rank).
void check_new_generator(const std::string& name, const Generator& generator,
                         const std::vector<std::pair<std::string, Generator*>>& shared,
                         const std::vector<std::pair<std::string, Generator*>>& per_rank) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    throw ValueError("Checkpoint: generator name '" + detail::printable(name) +
                     "' must be non-empty, without '/' or a NUL byte");
  }
  for (const auto* added : {&shared, &per_rank}) {
    for (const auto& entry : *added) {
      if (entry.first == name)
        throw ValueError("Checkpoint: a generator named '" + name + "' was added before");
    }
  }
  for (const auto* added : {&shared, &per_rank}) {
    for (const auto& [known, pointer] : *added) {
      if (pointer == &generator) {
        throw ValueError("Checkpoint: generator '" + name + "' is the generator added as '" +
                         known + "'");
      }
    }
  }
}

// Refuses to save an optimizer whose arrays no longer have its parameters' shapes (a
// parameter resized after the optimizer was made): no run could load that state.
template <class T>
void check_state_shapes(const optim::Optimizer<T>& optimizer, const optim::OptimizerState<T>& state,
                        std::size_t index, const nn::Module<T>& model) {
  const auto& parameters = optimizer.parameters();
  for (const auto& [name, arrays] : state.arrays) {
    for (std::size_t p = 0; p < arrays.size() && p < parameters.size(); ++p) {
      if (arrays[p].shape() == parameters[p].shape()) continue;
      std::string known;  // the model's name for the parameter, if it is the model's
      for (const auto& [model_name, tensor] : model.named_parameters()) {
        if (tensor.same_node(parameters[p])) known = " (" + model_name + ")";
      }
      throw ShapeError("Checkpoint::save: optimizer " + std::to_string(index) + " (" +
                       optimizer.name() + "): parameter " + std::to_string(p) + known +
                       " has shape " + shape_to_string(parameters[p].shape()) + " but its state (" +
                       name + ") has shape " + shape_to_string(arrays[p].shape()) +
                       ": the parameter changed shape after the optimizer was made; nothing "
                       "was written");
    }
  }
}

}  // namespace

template <class T>
Checkpoint<T>::Checkpoint(nn::Module<T>& model) : model_(&model) {}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_optimizer(optim::Optimizer<T>& optimizer) {
  (void)optimizer.state();  // refuses an optimizer without a savable state now, not at save()
  if (std::find(optimizers_.begin(), optimizers_.end(), &optimizer) != optimizers_.end()) {
    throw ValueError("Checkpoint: this " + optimizer.name() + " optimizer was added before");
  }
  optimizers_.push_back(&optimizer);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_scheduler(optim::LRScheduler& scheduler) {
  if (std::find(schedulers_.begin(), schedulers_.end(), &scheduler) != schedulers_.end()) {
    throw ValueError("Checkpoint: this " + scheduler.state().type + " schedule was added before");
  }
  schedulers_.push_back(&scheduler);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_generator(const std::string& name, Generator& generator) {
  check_new_generator(name, generator, generators_, rank_generators_);
  generators_.emplace_back(name, &generator);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_rank_generator(const std::string& name, Generator& generator) {
  check_new_generator(name, generator, generators_, rank_generators_);
  rank_generators_.emplace_back(name, &generator);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_loader(data::DataLoader<T>& loader) {
  if (std::find(loaders_.begin(), loaders_.end(), &loader) != loaders_.end()) {
    throw ValueError("Checkpoint: this data loader was added before");
  }
  loaders_.push_back(&loader);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::add_sampler(data::DistributedSampler& sampler) {
  if (std::find(samplers_.begin(), samplers_.end(), &sampler) != samplers_.end()) {
    throw ValueError("Checkpoint: this distributed sampler was added before");
  }
  samplers_.push_back(&sampler);
  return *this;
}

template <class T>
Checkpoint<T>& Checkpoint<T>::set_world_size(std::size_t world_size, std::size_t rank) {
  if (world_size == 0) throw ValueError("Checkpoint: world size must be at least 1, got 0");
  if (rank >= world_size) {
    throw ValueError("Checkpoint: rank " + std::to_string(rank) + " with world size " +
                     std::to_string(world_size) + "; expected a rank from 0 to " +
                     std::to_string(world_size - 1));
  }
  world_size_ = world_size;
  rank_ = rank;
  return *this;
}

template <class T>
std::vector<std::uint64_t> Checkpoint<T>::rank_generator_states() const {
  std::vector<std::uint64_t> states;
  for (const auto& entry : rank_generators_) states.push_back(entry.second->state());
  return states;
}

template <class T>
void Checkpoint<T>::save(const std::string& path, const TrainingPosition& position) const {
  if (world_size_ > 1 && !rank_generators_.empty()) {
    throw ValueError("Checkpoint::save: " + counted(rank_generators_.size(), "per-rank generator") +
                     " (" + rank_generators_[0].first + ", ...) with world size " +
                     std::to_string(world_size_) +
                     ": this process has only its own states; every rank calls "
                     "dist::save_checkpoint(), which gathers them");
  }
  save(path, position,
       std::vector<std::vector<std::uint64_t>>(world_size_, rank_generator_states()));
}

template <class T>
void Checkpoint<T>::save(const std::string& path, const TrainingPosition& position,
                         const std::vector<std::vector<std::uint64_t>>& rank_states) const {
  if (rank_states.size() != world_size_) {
    throw ValueError("Checkpoint::save: generator states of " +
                     counted(rank_states.size(), "rank") + ", expected one list per rank of " +
                     std::to_string(world_size_));
  }
  for (std::size_t r = 0; r < rank_states.size(); ++r) {
    if (rank_states[r].size() != rank_generators_.size()) {
      throw ValueError("Checkpoint::save: rank " + std::to_string(r) + " has " +
                       counted(rank_states[r].size(), "per-rank generator state") +
                       ", this checkpoint " + std::to_string(rank_generators_.size()));
    }
  }
  if (rank_states[rank_] != rank_generator_states()) {
    throw ValueError("Checkpoint::save: the generator states given for rank " +
                     std::to_string(rank_) + " are not this process's (rank " +
                     std::to_string(rank_) + ") own");
  }
  for (std::size_t i = 0; i < samplers_.size(); ++i) {
    if (samplers_[i]->world_size() != world_size_) {
      throw ValueError("Checkpoint::save: sampler " + std::to_string(i) + " has world size " +
                       std::to_string(samplers_[i]->world_size()) + ", the checkpoint world size " +
                       std::to_string(world_size_) + " (set_world_size(world size, rank))");
    }
  }
  NpzArchive arrays;
  arrays.emplace_back("checkpoint/format", int64_array(kFormat));
  arrays.emplace_back("checkpoint/world_size", int64_array(static_cast<std::int64_t>(world_size_)));
  arrays.emplace_back("checkpoint/epoch", int64_array(static_cast<std::int64_t>(position.epoch)));
  arrays.emplace_back("checkpoint/step", int64_array(static_cast<std::int64_t>(position.step)));
  for (const auto& entry : detail::state_entries(*model_)) {
    arrays.emplace_back("model/" + entry.name, entry.is_count
                                                   ? detail::count_array(entry.tensor.value())
                                                   : NpyArray::from(entry.tensor.value()));
  }
  for (std::size_t i = 0; i < optimizers_.size(); ++i) {
    const std::string prefix = "optimizer" + std::to_string(i) + "/";
    const auto state = optimizers_[i]->state();
    check_state_shapes(*optimizers_[i], state, i, *model_);
    arrays.emplace_back(prefix + "type", text_array(state.type));
    arrays.emplace_back(prefix + "learning_rate", float64_array(state.learning_rate));
    for (const auto& [name, value] : state.settings) {
      arrays.emplace_back(prefix + "setting/" + name, float64_array(value));
    }
    for (const auto& [name, counts] : state.counts) {
      arrays.emplace_back(prefix + "count/" + name, counts_array(counts));
    }
    for (const auto& [name, values] : state.arrays) {
      for (std::size_t p = 0; p < values.size(); ++p) {
        arrays.emplace_back(prefix + "array/" + name + "/" + std::to_string(p),
                            NpyArray::from(values[p]));
      }
    }
  }
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    const std::string prefix = "scheduler" + std::to_string(i) + "/";
    const auto state = schedulers_[i]->state();
    arrays.emplace_back(prefix + "type", text_array(state.type));
    for (const auto& [name, value] : state.settings) {
      arrays.emplace_back(prefix + "setting/" + name, float64_array(value));
    }
    for (const auto& [name, value] : state.values) {
      arrays.emplace_back(prefix + "value/" + name, float64_array(value));
    }
  }
  for (const auto& [name, generator] : generators_) {
    arrays.emplace_back("generator/" + name, bits_array(generator->state()));
  }
  for (std::size_t r = 0; r < rank_states.size(); ++r) {
    for (std::size_t g = 0; g < rank_generators_.size(); ++g) {
      arrays.emplace_back("rank" + std::to_string(r) + "/generator/" + rank_generators_[g].first,
                          bits_array(rank_states[r][g]));
    }
  }
  for (std::size_t i = 0; i < loaders_.size(); ++i) {
    const auto start = epoch_start(*loaders_[i], "loader " + std::to_string(i), position);
    const std::string prefix = "loader" + std::to_string(i) + "/";
    arrays.emplace_back(prefix + "epochs_drawn",
                        int64_array(static_cast<std::int64_t>(start.epochs_drawn)));
    arrays.emplace_back(prefix + "random_state", bits_array(start.random_state));
  }
  for (std::size_t i = 0; i < samplers_.size(); ++i) {
    const auto& sampler = *samplers_[i];
    const auto start = epoch_start(sampler, "sampler " + std::to_string(i), position);
    const std::string prefix = "sampler" + std::to_string(i) + "/";
    const auto size = [](std::size_t n) { return int64_array(static_cast<std::int64_t>(n)); };
    arrays.emplace_back(prefix + "dataset_size", size(sampler.dataset_size()));
    arrays.emplace_back(prefix + "local_batch_size", size(sampler.local_batch_size()));
    arrays.emplace_back(prefix + "world_size", size(sampler.world_size()));
    arrays.emplace_back(prefix + "epochs_drawn", size(start.epochs_drawn));
    arrays.emplace_back(prefix + "random_state", bits_array(start.random_state));
  }
  // Uncompressed: parameters and moments hardly deflate, and a save should cost little.
  write_npz(path, arrays, false);
}

template <class T>
TrainingPosition Checkpoint<T>::load(const std::string& path) {
  const NpzArchive arrays = read_npz(path);
  const std::string file = detail::printable(path);
  Reader reader(arrays);

  if (!reader.has("checkpoint/format")) {
    throw IoError(file +
                  ": not a tapegrad checkpoint (no checkpoint/format member; a model's "
                  "state saved by io::save_state() is read by io::load_state())");
  }
  const auto format = reader.int64_scalar("checkpoint/format");
  if (format && *format != kFormat) {
    throw IoError(file + ": checkpoint format " + std::to_string(*format) +
                  ", this tapegrad reads format " + std::to_string(kFormat));
  }
  const auto world_size = reader.count("checkpoint/world_size");
  if (world_size && *world_size != world_size_) {
    reader.note("the file was written by a run of world size " + std::to_string(*world_size) +
                ", this run has world size " + std::to_string(world_size_) +
                " (the batches and data order depend on it: resume with " +
                std::to_string(*world_size) + (*world_size == 1 ? " process)" : " processes)"));
  }
  const auto epoch = reader.count("checkpoint/epoch");
  const auto step = reader.count("checkpoint/step");

  auto entries = detail::state_entries(*model_);
  const auto model_values = read_model(reader, entries);

  // Optimizers and schedules: read whole, then compared by the objects themselves.
  const std::size_t file_optimizers = read_group_count(reader, "optimizer", optimizers_.size());
  std::vector<optim::OptimizerState<T>> optimizer_states;
  for (std::size_t i = 0; i < std::min(file_optimizers, optimizers_.size()); ++i) {
    optimizer_states.push_back(read_optimizer<T>(reader, "optimizer" + std::to_string(i) + "/"));
    note_all(reader, "optimizer " + std::to_string(i) + " (" + optimizers_[i]->name() + ")",
             optimizers_[i]->state_differences(optimizer_states.back()));
  }
  const std::size_t file_schedulers = read_group_count(reader, "scheduler", schedulers_.size());
  std::vector<optim::SchedulerState> scheduler_states;
  for (std::size_t i = 0; i < std::min(file_schedulers, schedulers_.size()); ++i) {
    scheduler_states.push_back(read_scheduler(reader, "scheduler" + std::to_string(i) + "/"));
    note_all(reader, "schedule " + std::to_string(i) + " (" + schedulers_[i]->state().type + ")",
             schedulers_[i]->state_differences(scheduler_states.back()));
  }

  const auto generator_states = read_generators(reader, generators_);
  const auto rank_generator_states = read_rank_generators(
      reader, rank_generators_, !world_size || *world_size == world_size_, world_size_, rank_);
  const std::size_t file_loaders = read_group_count(reader, "loader", loaders_.size());
  std::vector<typename data::DataLoader<T>::Position> loader_positions;
  for (std::size_t i = 0; i < std::min(file_loaders, loaders_.size()); ++i) {
    const std::string prefix = "loader" + std::to_string(i) + "/";
    const auto drawn = reader.count(prefix + "epochs_drawn");
    const auto random_state = reader.bits(prefix + "random_state");
    loader_positions.push_back({drawn.value_or(0), random_state.value_or(0)});
  }
  const std::size_t file_samplers = read_group_count(reader, "sampler", samplers_.size());
  std::vector<data::DistributedSampler::Position> sampler_positions;
  for (std::size_t i = 0; i < std::min(file_samplers, samplers_.size()); ++i)
    sampler_positions.push_back(read_sampler(reader, i, *samplers_[i]));
  reader.note_unread();

  if (!reader.problems().empty()) {
    std::string message = file + ": cannot resume from this checkpoint (nothing was loaded): ";
    for (std::size_t i = 0; i < reader.problems().size(); ++i) {
      message += (i ? "; " : "") + reader.problems()[i];
    }
    throw IoError(message);
  }

  // Everything matches: restore it all.
  for (std::size_t i = 0; i < entries.size(); ++i)
    entries[i].tensor.set_value(model_values[i]->template to<T>());
  for (std::size_t i = 0; i < optimizers_.size(); ++i)
    optimizers_[i]->load_state(optimizer_states[i]);
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    schedulers_[i]->load_state(scheduler_states[i]);
  for (std::size_t i = 0; i < generators_.size(); ++i)
    generators_[i].second->set_state(generator_states[i]);
  for (std::size_t i = 0; i < rank_generators_.size(); ++i)
    rank_generators_[i].second->set_state(rank_generator_states[i]);
  for (std::size_t i = 0; i < loaders_.size(); ++i) loaders_[i]->set_position(loader_positions[i]);
  for (std::size_t i = 0; i < samplers_.size(); ++i)
    samplers_[i]->set_position(sampler_positions[i]);
  return {*epoch, *step};
}

template class Checkpoint<float>;
template class Checkpoint<double>;

}  // namespace tapegrad::io

// Checkpoints: a run resumed from one ends bit-for-bit where the uninterrupted run ends; each
// part's state (optimizers, schedules, generators, loaders) round trips on its own; a file of
// another run is refused whole, naming every difference, and changes nothing. (The same run
// killed with SIGKILL in another process: checkpoint/kill_resume.py.)
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "checkpoint_run.hpp"
#include "helpers.hpp"
#include "io_helpers.hpp"

using namespace tapegrad;
using io::IoError;

namespace {

// Every parameter and buffer of two models, compared bit for bit (the same values, no NaN).
void check_same_model(const nn::Module<double>& a, const nn::Module<double>& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  const auto ba = a.named_buffers(), bb = b.named_buffers();
  REQUIRE(pa.size() == pb.size());
  REQUIRE(ba.size() == bb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(pa[i].second.value() == pb[i].second.value());
  }
  for (std::size_t i = 0; i < ba.size(); ++i) {
    INFO(ba[i].first);
    CHECK(ba[i].second.value() == bb[i].second.value());
  }
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// L(p) = sum(c p^2 + d p) with a different gradient in every element.
Tensor<double> bowl(const std::vector<Tensor<double>>& parameters) {
  Tensor<double> total(xt::xarray<double>(0.0));
  double k = 1;
  for (const auto& p : parameters) {
    total = total + sum(Tensor<double>(xt::xarray<double>(k)) * square(p) + p * (0.3 * k));
    k += 0.7;
  }
  return total;
}

std::vector<Tensor<double>> bowl_parameters() {
  return {Tensor<double>(test::random_array({2, 3}, 1), requires_grad),
          Tensor<double>(test::random_array({3}, 2), requires_grad)};
}

template <class Optimizer>
void run_steps(Optimizer& optimizer, int steps) {
  for (int s = 0; s < steps; ++s) {
    {
      Tape tape;
      bowl(optimizer.parameters()).backward();
    }
    optimizer.step();
    optimizer.zero_grad();
  }
}

// Three steps, state() into a copy of the optimizer over copies of the parameters, three more
// steps on both: the copy must follow the original bit for bit, and a copy that did not load
// the state must not (so the state carries something).
template <class Make>
void check_optimizer_round_trip(Make make) {
  auto original_parameters = bowl_parameters();
  auto original = make(original_parameters);
  run_steps(original, 3);
  const auto state = original.state();

  auto copy_parameters = bowl_parameters(), fresh_parameters = bowl_parameters();
  for (std::size_t i = 0; i < copy_parameters.size(); ++i) {
    copy_parameters[i].set_value(original_parameters[i].value());
    fresh_parameters[i].set_value(original_parameters[i].value());
  }
  auto copy = make(copy_parameters);
  auto fresh = make(fresh_parameters);
  copy.set_learning_rate(1.0);  // load_state() restores the rate too
  copy.load_state(state);
  CHECK(copy.learning_rate() == original.learning_rate());
  run_steps(original, 3);
  run_steps(copy, 3);
  run_steps(fresh, 3);
  bool fresh_differs = false;
  for (std::size_t i = 0; i < original_parameters.size(); ++i) {
    CHECK(copy_parameters[i].value() == original_parameters[i].value());
    fresh_differs =
        fresh_differs || !(fresh_parameters[i].value() == original_parameters[i].value());
  }
  if (!state.arrays.empty()) CHECK(fresh_differs);
}

// A small model, SGD and a checkpoint over them, for the refusals.
struct SmallRun {
  explicit SmallRun(std::vector<std::size_t> sizes = {3, 4, 2}, double momentum = 0.9)
      : model(sizes, nn::Activation::Tanh,
              nn::MLPOptions().linear(nn::LinearOptions().generator(random))),
        optimizer(model.parameters(), 0.1, optim::SGDOptions().momentum(momentum)),
        schedule(optimizer, 2, 0.5),
        checkpoint(model) {
    checkpoint.add_optimizer(optimizer).add_scheduler(schedule).add_generator("init", random);
  }
  void train(int steps) {
    for (int s = 0; s < steps; ++s) {
      {
        Tape tape;
        sum(square(model(Tensor<double>(test::random_array({5, 3}, 7 + s))))).backward();
      }
      optimizer.step();
      optimizer.zero_grad();
      schedule.step();
    }
  }
  Generator random{3};
  nn::MLP<double> model;
  optim::SGD<double> optimizer;
  optim::StepLR schedule;
  io::Checkpoint<double> checkpoint;
};

// What a refused load must leave as it was.
struct Snapshot {
  explicit Snapshot(SmallRun& run)
      : parameters(run.model.parameters()),
        state(run.optimizer.state()),
        schedule(run.schedule.state()),
        random(run.random.state()) {
    for (const auto& p : parameters) values.push_back(p.value());
  }
  void check_unchanged(SmallRun& run) const {
    for (std::size_t i = 0; i < parameters.size(); ++i) CHECK(parameters[i].value() == values[i]);
    const auto now = run.optimizer.state();
    CHECK(now.learning_rate == state.learning_rate);
    REQUIRE(now.arrays.size() == state.arrays.size());
    for (std::size_t a = 0; a < now.arrays.size(); ++a) {
      for (std::size_t i = 0; i < now.arrays[a].second.size(); ++i) {
        CHECK(now.arrays[a].second[i] == state.arrays[a].second[i]);
      }
    }
    CHECK(run.schedule.state().values == schedule.values);
    CHECK(run.random.state() == random);
  }
  std::vector<Tensor<double>> parameters;
  std::vector<xt::xarray<double>> values;
  optim::OptimizerState<double> state;
  optim::SchedulerState schedule;
  std::uint64_t random;
};

}  // namespace

TEST_CASE("a run resumed from a checkpoint ends bit for bit where the uninterrupted run ends") {
  for (const std::string setup : {"sgd", "adam"}) {
    INFO("setup ", setup);
    test::ScratchFolder folder;
    const std::string path = folder.file("run.ckpt");
    test::CheckpointRun uninterrupted(setup);
    uninterrupted.train(100);

    // Saves after steps 30 and 60, then goes on to step 75: those 15 steps are lost.
    test::CheckpointRun interrupted(setup);
    interrupted.train(75, 30, path);

    test::CheckpointRun resumed(setup);
    const auto initial = resumed.model().parameters()[0].value();
    resumed.resume(path);
    CHECK(resumed.steps_done() == 60);  // epoch 8, step 4 of 7: in the middle of an epoch
    CHECK(!(resumed.model().parameters()[0].value() == initial));
    resumed.train(100);
    check_same_model(resumed.model(), uninterrupted.model());
    CHECK(resumed.optimizer().learning_rate() == uninterrupted.optimizer().learning_rate());
  }
}

TEST_CASE("a checkpoint saved at the end of an epoch resumes before the epoch's schedule step") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  test::CheckpointRun uninterrupted("sgd");
  uninterrupted.train(60);
  test::CheckpointRun interrupted("sgd");
  interrupted.train(21, 21, path);  // 21 = 3 epochs of 7: the save comes after the last batch
  test::CheckpointRun resumed("sgd");
  resumed.resume(path);
  CHECK(resumed.steps_done() == 21);
  CHECK(resumed.optimizer().learning_rate() == 0.05);  // StepLR halves it after epoch 3
  resumed.train(60);
  check_same_model(resumed.model(), uninterrupted.model());
  CHECK(resumed.optimizer().learning_rate() == uninterrupted.optimizer().learning_rate());
}

TEST_CASE("each optimizer's state round trips: the copy continues as the original") {
  using P = std::vector<Tensor<double>>;
  check_optimizer_round_trip(
      [](P p) { return optim::SGD<double>(p, 0.05, optim::SGDOptions().momentum(0.9)); });
  check_optimizer_round_trip([](P p) {
    return optim::SGD<double>(p, 0.05,
                              optim::SGDOptions().momentum(0.8).nesterov(true).weight_decay(0.1));
  });
  check_optimizer_round_trip([](P p) {
    return optim::SGD<double>(p, 0.05, optim::SGDOptions().momentum(0.5).dampening(0.3));
  });
  check_optimizer_round_trip([](P p) { return optim::SGD<double>(p, 0.05); });
  check_optimizer_round_trip([](P p) {
    return optim::Adagrad<double>(p, 0.1,
                                  optim::AdagradOptions().lr_decay(0.01).initial_accumulator(0.1));
  });
  check_optimizer_round_trip([](P p) { return optim::RMSprop<double>(p, 0.01); });
  check_optimizer_round_trip([](P p) {
    return optim::RMSprop<double>(p, 0.01, optim::RMSpropOptions().centered(true).momentum(0.9));
  });
  check_optimizer_round_trip([](P p) { return optim::Adam<double>(p, 0.01); });
  check_optimizer_round_trip([](P p) {
    return optim::Adam<double>(p, 0.01, optim::AdamOptions().amsgrad(true).weight_decay(0.1));
  });
  check_optimizer_round_trip([](P p) { return optim::AdamW<double>(p, 0.01); });

  const auto adam =
      optim::Adam<double>(bowl_parameters(), 0.01, optim::AdamOptions().amsgrad(true)).state();
  CHECK(adam.type == "Adam");
  REQUIRE(adam.arrays.size() == 3);
  CHECK(adam.arrays[2].first == "max_exp_avg_sq");
  REQUIRE(adam.counts.size() == 1);
  CHECK(adam.counts[0].first == "step");
  CHECK(adam.counts[0].second == std::vector<std::size_t>{0, 0});

  auto newton_parameters = bowl_parameters();
  optim::Newton<double> newton(newton_parameters, optim::NewtonOptions().damping(0.5));
  const auto newton_state = newton.state();
  CHECK(newton_state.settings ==
        std::vector<std::pair<std::string, double>>{{"damping", 0.5}, {"max_parameters", 2000}});
  CHECK(newton_state.arrays.empty());
}

TEST_CASE(
    "an optimizer refuses the state of another type, settings or parameters, changing nothing") {
  auto parameters = bowl_parameters();
  optim::Adam<double> adam(parameters, 0.01);
  run_steps(adam, 2);
  const auto before = adam.state();

  optim::SGD<double> sgd(bowl_parameters(), 0.1, optim::SGDOptions().momentum(0.9));
  CHECK_THROWS_WITH_AS(adam.load_state(sgd.state()),
                       "Adam: cannot load the state: the state is of SGD, this optimizer is Adam",
                       ValueError);
  optim::AdamW<double> adamw(bowl_parameters(), 0.01);
  CHECK_THROWS_WITH_AS(adam.load_state(adamw.state()),
                       doctest::Contains("the state is of AdamW, this optimizer is Adam"),
                       ValueError);

  optim::Adam<double> other_betas(bowl_parameters(), 0.01,
                                  optim::AdamOptions().betas(0.8, 0.999).amsgrad(true));
  const std::string message = message_of([&] { adam.load_state(other_betas.state()); });
  CHECK(message.find("beta1 is 0.8 in the state but 0.9 here") != std::string::npos);
  CHECK(message.find("amsgrad is 1 in the state but 0 here") != std::string::npos);
  CHECK(message.find("unexpected array max_exp_avg_sq") != std::string::npos);

  optim::Adam<double> fewer({Tensor<double>(test::random_array({2, 3}, 1), requires_grad)}, 0.01);
  const std::string fewer_message = message_of([&] { adam.load_state(fewer.state()); });
  CHECK(fewer_message.find(
            "step has 1 entries, one per parameter, but this optimizer has 2 parameters") !=
        std::string::npos);
  CHECK(fewer_message.find("exp_avg has 1 arrays") != std::string::npos);

  optim::Adam<double> wider({Tensor<double>(test::random_array({2, 4}, 1), requires_grad),
                             Tensor<double>(test::random_array({3}, 2), requires_grad)},
                            0.01);
  CHECK_THROWS_WITH_AS(
      adam.load_state(wider.state()),
      doctest::Contains("exp_avg of parameter 0 has shape (2, 4), the parameter (2, 3)"),
      ValueError);
  auto negative = before;
  negative.learning_rate = -1;
  CHECK_THROWS_WITH_AS(adam.load_state(negative),
                       doctest::Contains("learning rate -1 is not a finite number >= 0"),
                       ValueError);

  const auto after = adam.state();  // nothing changed by the refusals
  CHECK(after.learning_rate == before.learning_rate);
  CHECK(after.counts == before.counts);
  for (std::size_t a = 0; a < after.arrays.size(); ++a) {
    for (std::size_t i = 0; i < after.arrays[a].second.size(); ++i) {
      CHECK(after.arrays[a].second[i] == before.arrays[a].second[i]);
    }
  }

  optim::LBFGS<double> lbfgs(bowl_parameters());
  CHECK_THROWS_WITH_AS(lbfgs.state(), doctest::Contains("LBFGS: its state cannot be saved"),
                       ValueError);
  nn::MLP<double> model({3, 2}, nn::Activation::Tanh);
  io::Checkpoint<double> checkpoint(model);
  optim::LBFGS<double> model_lbfgs(model.parameters());
  CHECK_THROWS_WITH_AS(checkpoint.add_optimizer(model_lbfgs),
                       "LBFGS: its state cannot be saved (checkpoints hold the state of SGD, "
                       "Adagrad, RMSprop, Adam, AdamW and Newton)",
                       ValueError);
}

TEST_CASE("each schedule's state round trips, and another schedule's is refused") {
  Tensor<double> p(xt::xarray<double>{1.0}, requires_grad);
  optim::SGD<double> a(std::vector{p}, 0.1), b(std::vector{p}, 0.1);

  optim::StepLR step_a(a, 2, 0.5), step_b(b, 2, 0.5);
  for (int i = 0; i < 3; ++i) step_a.step();
  b.set_learning_rate(a.learning_rate());  // the optimizer's state carries the rate
  step_b.load_state(step_a.state());
  CHECK(step_b.epoch() == 3);
  step_a.step();
  step_b.step();
  CHECK(a.learning_rate() == 0.025);
  CHECK(b.learning_rate() == 0.025);

  optim::ReduceLROnPlateau plateau_a(a, optim::ReduceLROnPlateauOptions().patience(1));
  optim::ReduceLROnPlateau plateau_b(b, optim::ReduceLROnPlateauOptions().patience(1));
  plateau_a.step(1.0);
  plateau_a.step(2.0);  // one bad epoch: the next one reduces
  plateau_b.load_state(plateau_a.state());
  const auto state = plateau_b.state();
  CHECK(state.values == std::vector<std::pair<std::string, double>>{
                            {"best", 1.0}, {"bad_epochs", 1}, {"cooldown_left", 0}});
  CHECK(plateau_a.step(3.0));
  CHECK(plateau_b.step(3.0));
  CHECK(a.learning_rate() == b.learning_rate());

  optim::ExponentialLR exponential(a, 0.9);
  optim::CosineAnnealingLR cosine(a, 10);
  CHECK_THROWS_WITH_AS(exponential.load_state(step_a.state()),
                       "ExponentialLR: cannot load the state: the state is of StepLR, this "
                       "schedule is ExponentialLR",
                       ValueError);
  optim::StepLR other_gamma(a, 3, 0.7);
  CHECK_THROWS_WITH_AS(
      other_gamma.load_state(step_a.state()),
      "StepLR: cannot load the state: step_size is 2 in the state but 3 here; gamma is "
      "0.5 in the state but 0.7 here",
      ValueError);
  auto fractional = cosine.state();
  fractional.values[1].second = 2.5;  // the epoch
  CHECK_THROWS_WITH_AS(cosine.load_state(fractional),
                       doctest::Contains("epoch is 2.5, expected a whole number in [0, 2^53)"),
                       ValueError);
}

TEST_CASE("Generator state and DataLoader positions replay the same numbers and epochs") {
  Generator random(42);
  random.next_u64();
  const auto state = random.state();
  const double u = random.uniform();
  Generator other(7);
  other.set_state(state);
  CHECK(other.uniform() == u);

  const auto data =
      data::make_classification(data::ClassificationOptions().samples(20).features(5).seed(1));
  data::DataLoader<double> loader(data, 6, data::LoaderOptions().seed(3));
  CHECK(loader.latest_epoch_start().epochs_drawn == 0);
  CHECK(loader.latest_epoch_start().random_state == loader.position().random_state);
  loader.epoch();
  const auto start = loader.position();
  const auto second = loader.epoch();
  CHECK(loader.latest_epoch_start().epochs_drawn == 1);
  CHECK(loader.latest_epoch_start().random_state == start.random_state);
  const auto third = loader.epoch();

  data::DataLoader<double> again(data, 6, data::LoaderOptions().seed(3));
  again.set_position(start);
  CHECK(again.epochs_drawn() == 1);
  CHECK(again.epoch()[0].indices == second[0].indices);
  CHECK(again.epoch()[2].indices == third[2].indices);
  CHECK(!(second[0].indices == third[0].indices));  // the epochs do differ
}

TEST_CASE("a checkpoint file holds the documented members") {
  test::ScratchFolder folder;
  SmallRun run;
  run.train(3);
  run.checkpoint.set_world_size(4);
  run.checkpoint.save(folder.file("run.ckpt"), {3, 0});
  std::vector<std::string> names;
  for (const auto& [name, array] : io::read_npz(folder.file("run.ckpt"))) names.push_back(name);
  CHECK(names == std::vector<std::string>{"checkpoint/format",
                                          "checkpoint/world_size",
                                          "checkpoint/epoch",
                                          "checkpoint/step",
                                          "model/0.weight",
                                          "model/0.bias",
                                          "model/2.weight",
                                          "model/2.bias",
                                          "optimizer0/type",
                                          "optimizer0/learning_rate",
                                          "optimizer0/setting/momentum",
                                          "optimizer0/setting/dampening",
                                          "optimizer0/setting/nesterov",
                                          "optimizer0/setting/weight_decay",
                                          "optimizer0/count/momentum_updates",
                                          "optimizer0/array/momentum_buffer/0",
                                          "optimizer0/array/momentum_buffer/1",
                                          "optimizer0/array/momentum_buffer/2",
                                          "optimizer0/array/momentum_buffer/3",
                                          "scheduler0/type",
                                          "scheduler0/setting/step_size",
                                          "scheduler0/setting/gamma",
                                          "scheduler0/value/base_lr",
                                          "scheduler0/value/epoch",
                                          "generator/init"});
  const auto archive = io::read_npz(folder.file("run.ckpt"));
  CHECK(archive[1].second.to<std::int64_t>()() == 4);
  CHECK(archive[8].second.bytes() == std::vector<unsigned char>{'S', 'G', 'D'});
  CHECK(archive[9].second.to<double>()() == 0.05);  // StepLR halved 0.1 after two steps
}

TEST_CASE("a checkpoint of another run is refused whole, naming every difference") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  SmallRun saved;
  saved.train(2);
  saved.checkpoint.save(path, {2, 0});

  SUBCASE("the same run loads it") {
    SmallRun same;
    const auto position = same.checkpoint.load(path);
    CHECK(position.epoch == 2);
    CHECK(position.step == 0);
    check_same_model(same.model, saved.model);
    CHECK(same.random.state() == saved.random.state());
    CHECK(same.optimizer.learning_rate() == saved.optimizer.learning_rate());
  }
  SUBCASE("another architecture") {
    SmallRun wider({3, 5, 2});
    const Snapshot snapshot(wider);
    const std::string message = message_of([&] { wider.checkpoint.load(path); });
    CHECK(message.find(path + ": cannot resume from this checkpoint (nothing was loaded): ") == 0);
    CHECK(message.find("model/0.weight has shape (3, 4), expected (3, 5)") != std::string::npos);
    CHECK(message.find("model/2.weight has shape (4, 2), expected (5, 2)") != std::string::npos);
    CHECK(message.find("momentum_buffer of parameter 0 has shape (3, 4), the parameter (3, 5)") !=
          std::string::npos);
    snapshot.check_unchanged(wider);
    SmallRun deeper({3, 4, 4, 2});
    const std::string deeper_message = message_of([&] { deeper.checkpoint.load(path); });
    CHECK(deeper_message.find("the model's 4.weight is missing (another architecture?)") !=
          std::string::npos);
    CHECK(deeper_message.find(
              "momentum_updates has 4 entries, one per parameter, but this optimizer has 6") !=
          std::string::npos);
  }
  SUBCASE("another optimizer setting") {
    SmallRun slower({3, 4, 2}, 0.5);
    const Snapshot snapshot(slower);
    CHECK_THROWS_WITH_AS(
        slower.checkpoint.load(path),
        (path + ": cannot resume from this checkpoint (nothing was loaded): optimizer 0 "
                "(SGD): momentum is 0.9 in the state but 0.5 here")
            .c_str(),
        IoError);
    snapshot.check_unchanged(slower);
  }
  SUBCASE("another optimizer") {
    SmallRun run;
    io::Checkpoint<double> with_adam(run.model);
    optim::Adam<double> adam(run.model.parameters());
    with_adam.add_optimizer(adam).add_scheduler(run.schedule).add_generator("init", run.random);
    CHECK_THROWS_WITH_AS(
        with_adam.load(path),
        doctest::Contains("optimizer 0 (Adam): the state is of SGD, this optimizer is Adam"),
        IoError);
    io::Checkpoint<double> without_optimizer(run.model);
    without_optimizer.add_scheduler(run.schedule).add_generator("init", run.random);
    CHECK_THROWS_WITH_AS(without_optimizer.load(path),
                         doctest::Contains("the file holds 1 optimizer, this run 0"), IoError);
  }
  SUBCASE("another world size") {
    SmallRun run;
    const Snapshot snapshot(run);
    run.checkpoint.set_world_size(2);
    CHECK_THROWS_WITH_AS(
        run.checkpoint.load(path),
        doctest::Contains("the file was written by a run of world size 1, this run has world "
                          "size 2 (the batches and data order depend on it: resume with 1 "
                          "process)"),
        IoError);
    snapshot.check_unchanged(run);
    CHECK_THROWS_WITH_AS(run.checkpoint.set_world_size(0),
                         "Checkpoint: world size must be at least 1, got 0", ValueError);
  }
  SUBCASE("another set of generators") {
    SmallRun run;
    Generator extra(5);
    run.checkpoint.add_generator("dropout", extra);
    CHECK_THROWS_WITH_AS(run.checkpoint.load(path),
                         doctest::Contains("generator/dropout is missing"), IoError);
    CHECK_THROWS_WITH_AS(run.checkpoint.add_generator("dropout", run.random),
                         "Checkpoint: a generator named 'dropout' was added before", ValueError);
    CHECK_THROWS_WITH_AS(run.checkpoint.add_generator("a/b", extra),
                         doctest::Contains("without '/'"), ValueError);
  }
  SUBCASE("malformed files") {
    SmallRun run;
    const Snapshot snapshot(run);
    test::write_text(folder.file("garbage.ckpt"), "not a zip archive at all");
    CHECK_THROWS_AS(run.checkpoint.load(folder.file("garbage.ckpt")), IoError);
    io::save_state(run.model, folder.file("state.npz"));
    CHECK_THROWS_WITH_AS(
        run.checkpoint.load(folder.file("state.npz")),
        doctest::Contains("state.npz: not a tapegrad checkpoint (no checkpoint/format member"),
        IoError);
    // The checkpoint with one member dropped, one of another type and one added.
    auto archive = io::read_npz(path);
    io::NpzArchive edited;
    for (auto& [name, array] : archive) {
      if (name == "optimizer0/count/momentum_updates") continue;
      if (name == "checkpoint/epoch") {
        edited.emplace_back(name, io::NpyArray::from(xt::xarray<double>(2.0)));
        continue;
      }
      edited.emplace_back(name, array);
    }
    edited.emplace_back("model/9.weight", io::NpyArray::from(xt::xarray<double>{1.0}));
    io::write_npz(folder.file("edited.ckpt"), edited);
    const std::string message =
        message_of([&] { run.checkpoint.load(folder.file("edited.ckpt")); });
    CHECK(message.find("checkpoint/epoch is float64, expected int64") != std::string::npos);
    CHECK(message.find("optimizer 0 (SGD): counter momentum_updates is missing") !=
          std::string::npos);
    CHECK(message.find("unexpected model/9.weight: the model has no 9.weight") !=
          std::string::npos);
    auto future = archive;
    future[0].second = io::NpyArray::from(xt::xarray<std::int64_t>(2));
    io::write_npz(folder.file("future.ckpt"), future);
    CHECK_THROWS_WITH_AS(
        run.checkpoint.load(folder.file("future.ckpt")),
        doctest::Contains("future.ckpt: checkpoint format 2, this tapegrad reads format 1"),
        IoError);
    snapshot.check_unchanged(run);
  }
}

TEST_CASE("Checkpoint::save refuses a position in another epoch than its loaders'") {
  test::ScratchFolder folder;
  test::CheckpointRun run("sgd");
  run.train(10);  // epoch 1 (from 0) is drawn, 3 of its batches done
  CHECK_THROWS_WITH_AS(
      run.checkpoint().save(folder.file("run.ckpt"), {0, 3}),
      "Checkpoint::save: loader 0 has drawn 2 epochs, but the position is epoch 0 (from 0), "
      "step 3: expected 1 drawn (or 0 at step 0)",
      ValueError);
  run.checkpoint().save(folder.file("run.ckpt"), {1, 3});
}

// ---- data-parallel runs: DistributedSampler and per-rank generators ----

namespace {

// One rank of a data-parallel run over `dataset_size` samples, `world` ranks x `local_batch`:
// a small model, the rank's own dropout stream (seeded per rank), its sampler, and a
// checkpoint of world size 2 over them (no MPI: the ranks are objects of this process).
struct RankRun {
  explicit RankRun(std::size_t rank, std::size_t dataset_size = 49, std::size_t local_batch = 4,
                   std::size_t world = 2)
      : sampler(dataset_size, local_batch, rank, world, data::LoaderOptions().seed(11)),
        dropout(100 + rank),
        checkpoint(model) {
    checkpoint.set_world_size(2, rank).add_sampler(sampler).add_rank_generator("dropout", dropout);
  }
  // Draws the epochs before `epoch` and `epoch`, and `steps` dropout numbers; returns
  // `epoch`'s batches.
  std::vector<std::vector<std::size_t>> run_to(std::size_t epoch, int steps) {
    std::vector<std::vector<std::size_t>> batches;
    while (sampler.epochs_drawn() <= epoch) batches = sampler.epoch();
    for (int s = 0; s < steps; ++s) dropout.uniform();
    return batches;
  }
  Generator init{3};
  nn::Linear<double> model{3, 2, nn::LinearOptions().generator(init)};
  data::DistributedSampler sampler;
  Generator dropout;
  io::Checkpoint<double> checkpoint;
};

// Saves what `ranks` hold (every rank's dropout state, as dist::save_checkpoint gathers
// them) from rank 0's checkpoint.
void save_ranks(std::vector<RankRun*> ranks, const std::string& path, io::TrainingPosition at) {
  std::vector<std::vector<std::uint64_t>> states;
  for (auto* rank : ranks) states.push_back(rank->checkpoint.rank_generator_states());
  ranks[0]->checkpoint.save(path, at, states);
}

}  // namespace

TEST_CASE("a data-parallel checkpoint resumes every rank's batches and dropout stream mid-epoch") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  RankRun rank0(0), rank1(1);
  const auto epoch1_rank0 = rank0.run_to(1, 3), epoch1_rank1 = rank1.run_to(1, 3);
  save_ranks({&rank0, &rank1}, path, {1, 3});  // after step 3 of epoch 1 (from 0)
  // What the uninterrupted ranks do next: the rest of epoch 1, epoch 2, their dropout draws.
  const auto epoch2_rank0 = rank0.sampler.epoch(), epoch2_rank1 = rank1.sampler.epoch();
  const double next_rank0 = rank0.dropout.uniform(), next_rank1 = rank1.dropout.uniform();
  CHECK(next_rank0 != next_rank1);  // the streams differ per rank

  RankRun resumed0(0), resumed1(1);
  const auto position0 = resumed0.checkpoint.load(path);
  const auto position1 = resumed1.checkpoint.load(path);
  CHECK(position0.epoch == 1);
  CHECK(position0.step == 3);
  CHECK(position1.step == 3);
  CHECK(resumed0.sampler.epochs_drawn() == 1);
  const auto again0 = resumed0.sampler.epoch(), again1 = resumed1.sampler.epoch();
  REQUIRE(again0.size() == 7);  // 49 samples, global batch 8: 6 full steps and one of 1 sample
  for (std::size_t s = 3; s < again0.size(); ++s) {
    CHECK(again0[s] == epoch1_rank0[s]);
    CHECK(again1[s] == epoch1_rank1[s]);
  }
  CHECK(again1[6].empty());  // rank 1's share of the last global batch of 1 sample
  CHECK(resumed0.sampler.epoch() == epoch2_rank0);
  CHECK(resumed1.sampler.epoch() == epoch2_rank1);
  CHECK(resumed0.dropout.uniform() == next_rank0);
  CHECK(resumed1.dropout.uniform() == next_rank1);

  // Saved at step 0 of an epoch not yet drawn: the sampler's current position.
  RankRun early0(0), early1(1);
  early0.run_to(0, 2);
  early1.run_to(0, 2);
  save_ranks({&early0, &early1}, path, {1, 0});
  const auto next_epoch = early1.sampler.epoch();
  RankRun late1(1);
  CHECK(late1.checkpoint.load(path).epoch == 1);
  CHECK(late1.sampler.epoch() == next_epoch);
}

TEST_CASE("a data-parallel checkpoint file holds the sampler and every rank's generators") {
  test::ScratchFolder folder;
  RankRun rank0(0), rank1(1);
  rank0.run_to(0, 1);
  rank1.run_to(0, 2);
  save_ranks({&rank0, &rank1}, folder.file("run.ckpt"), {0, 2});
  std::map<std::string, io::NpyArray> members;
  for (const auto& [name, array] : io::read_npz(folder.file("run.ckpt")))
    members.emplace(name, array);
  const auto int64 = [&](const std::string& name) {
    REQUIRE(members.count(name) == 1);
    return members.at(name).to<std::int64_t>()();
  };
  const auto bits = [&](const std::string& name) {
    return static_cast<std::uint64_t>(int64(name));
  };
  CHECK(int64("checkpoint/world_size") == 2);
  CHECK(int64("sampler0/dataset_size") == 49);
  CHECK(int64("sampler0/local_batch_size") == 4);
  CHECK(int64("sampler0/world_size") == 2);
  CHECK(int64("sampler0/epochs_drawn") == 0);  // the start of epoch 0, drawn again on resume
  CHECK(bits("sampler0/random_state") == Generator(11).state());
  CHECK(bits("rank0/generator/dropout") == rank0.dropout.state());
  CHECK(bits("rank1/generator/dropout") == rank1.dropout.state());
  CHECK(rank0.dropout.state() != rank1.dropout.state());
  CHECK(members.size() == 13);  // 4 checkpoint/, 2 model/, 5 sampler0/, 2 rankR/
}

TEST_CASE("a data-parallel checkpoint of another run is refused, naming every difference") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  RankRun rank0(0), rank1(1);
  rank0.run_to(1, 2);
  rank1.run_to(1, 2);
  save_ranks({&rank0, &rank1}, path, {1, 2});

  SUBCASE("another dataset size, local batch size and sampler world size") {
    RankRun other(1, 50, 5, 3);
    other.run_to(0, 1);
    const auto position = other.sampler.position();
    const auto dropout = other.dropout.state();
    CHECK_THROWS_WITH_AS(other.checkpoint.load(path),
                         (path + ": cannot resume from this checkpoint (nothing was loaded): "
                                 "sampler 0: dataset size is 49 in the file but 50 here; "
                                 "sampler 0: local batch size is 4 in the file but 5 here; "
                                 "sampler 0: world size is 2 in the file but 3 here")
                             .c_str(),
                         IoError);
    CHECK(other.sampler.epochs_drawn() == 1);
    CHECK(other.sampler.position().random_state == position.random_state);
    CHECK(other.dropout.state() == dropout);
  }
  SUBCASE("another world size") {
    RankRun alone(0);
    alone.checkpoint.set_world_size(1);
    CHECK_THROWS_WITH_AS(
        alone.checkpoint.load(path),
        doctest::Contains("the file was written by a run of world size 2, this run "
                          "has world size 1 (the batches and data order depend on it: resume "
                          "with 2 processes)"),
        IoError);
    CHECK(alone.sampler.epochs_drawn() == 0);
  }
  SUBCASE("no sampler, another per-rank generator") {
    RankRun run(1);
    io::Checkpoint<double> without_sampler(run.model);
    Generator noise(1);
    without_sampler.set_world_size(2, 1).add_rank_generator("noise", noise);
    const std::string message = message_of([&] { without_sampler.load(path); });
    CHECK(message.find("the file holds 1 sampler, this run 0") != std::string::npos);
    CHECK(message.find("rank0/generator/noise is missing") != std::string::npos);
    CHECK(message.find("rank1/generator/noise is missing") != std::string::npos);
    CHECK(message.find("unexpected rank0/generator/dropout (this run's per-rank generators: "
                       "noise, ranks 0 to 1)") != std::string::npos);
    CHECK(noise.state() == Generator(1).state());
  }
}

TEST_CASE("a data-parallel checkpoint is refused at save when it cannot be whole") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  RankRun rank0(0), rank1(1);
  rank0.run_to(0, 1);
  const auto own = rank0.checkpoint.rank_generator_states();
  CHECK_THROWS_WITH_AS(rank0.checkpoint.save(path, {0, 1}),
                       "Checkpoint::save: 1 per-rank generator (dropout, ...) with world size 2: "
                       "this process has only its own states; every rank calls "
                       "dist::save_checkpoint(), which gathers them",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      rank0.checkpoint.save(path, {0, 1}, {own}),
      "Checkpoint::save: generator states of 1 rank, expected one list per rank of 2", ValueError);
  CHECK_THROWS_WITH_AS(
      rank0.checkpoint.save(path, {0, 1}, {own, {}}),
      "Checkpoint::save: rank 1 has 0 per-rank generator states, this checkpoint 1", ValueError);
  CHECK_THROWS_WITH_AS(rank0.checkpoint.save(path, {0, 1}, {{own[0] + 1}, own}),
                       "Checkpoint::save: the generator states given for rank 0 are not this "
                       "process's (rank 0) own",
                       ValueError);
  CHECK_THROWS_WITH_AS(rank0.checkpoint.save(path, {1, 3}, {own, own}),
                       "Checkpoint::save: sampler 0 has drawn 1 epoch, but the position is epoch 1 "
                       "(from 0), step 3: expected 2 drawn (or 1 at step 0)",
                       ValueError);
  RankRun wide(0, 49, 4, 3);
  wide.run_to(0, 0);
  CHECK_THROWS_WITH_AS(wide.checkpoint.save(path, {0, 1}, {{wide.dropout.state()}, {0}}),
                       "Checkpoint::save: sampler 0 has world size 3, the checkpoint world size 2 "
                       "(set_world_size(world size, rank))",
                       ValueError);
  CHECK(!std::ifstream(path).good());  // nothing was written
  CHECK_THROWS_WITH_AS(rank0.checkpoint.set_world_size(2, 2),
                       "Checkpoint: rank 2 with world size 2; expected a rank from 0 to 1",
                       ValueError);
  CHECK_THROWS_WITH_AS(rank0.checkpoint.add_generator("dropout", rank0.init),
                       "Checkpoint: a generator named 'dropout' was added before", ValueError);
  CHECK_THROWS_WITH_AS(rank0.checkpoint.add_generator("init", rank0.dropout),
                       "Checkpoint: generator 'init' is the generator added as 'dropout'",
                       ValueError);
  CHECK_THROWS_WITH_AS(rank0.checkpoint.add_sampler(rank0.sampler),
                       "Checkpoint: this distributed sampler was added before", ValueError);

  // World size 1: the per-rank generators are rank 0's, and save() writes them.
  RankRun single(0, 49, 4, 1);
  single.checkpoint.set_world_size(1);
  single.run_to(0, 1);
  single.checkpoint.save(path, {0, 1});
  const auto state = single.dropout.state();
  single.dropout.uniform();
  single.checkpoint.load(path);
  CHECK(single.dropout.state() == state);
}

namespace {

// `path`'s checkpoint with member `name` replaced by `array`, written to `edited`.
void write_edited(const std::string& path, const std::string& edited, const std::string& name,
                  const io::NpyArray& array) {
  auto archive = io::read_npz(path);
  bool found = false;
  for (auto& entry : archive) {
    if (entry.first == name) {
      entry.second = array;
      found = true;
    }
  }
  REQUIRE_MESSAGE(found, name);
  io::write_npz(edited, archive);
}

// The float64 array `name` of `path`'s checkpoint with element `k` set to `value`.
io::NpyArray with_element(const std::string& path, const std::string& name, std::size_t k,
                          double value) {
  for (const auto& [member, array] : io::read_npz(path)) {
    if (member != name) continue;
    auto values = array.to<double>();
    values.data()[k] = value;
    return io::NpyArray::from(values);
  }
  FAIL("no member " << name);
  return io::NpyArray::from(xt::xarray<double>{});
}

}  // namespace

TEST_CASE("a checkpoint whose optimizer values no step could continue from is refused") {
  // Before, negative Adam second moments loaded, and the next step made the weights NaN.
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt"), edited = folder.file("edited.ckpt");
  struct Case {
    std::string name;  // the optimizer's
    std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<Tensor<double>>)> make;
    std::string member;
    std::size_t element;
    double value;
    std::string expected;
  };
  const auto adam = [](auto ps) {
    return std::make_unique<optim::Adam<double>>(ps, 0.01, optim::AdamOptions().amsgrad(true));
  };
  const double nan = std::nan(""), inf = INFINITY;
  const std::vector<Case> cases = {
      {"Adam", adam, "array/exp_avg_sq/0", 3, -1.0,
       "exp_avg_sq of parameter 0 holds -1 at flat index 3; expected finite values >= 0"},
      {"Adam", adam, "array/max_exp_avg_sq/1", 0, inf,
       "max_exp_avg_sq of parameter 1 holds inf at flat index 0; expected finite values >= 0"},
      {"Adam", adam, "array/exp_avg/0", 2, nan,
       "exp_avg of parameter 0 holds nan at flat index 2; expected finite values"},
      {"RMSprop", [](auto ps) { return std::make_unique<optim::RMSprop<double>>(ps, 0.01); },
       "array/square_avg/0", 0, -1e-3,
       "square_avg of parameter 0 holds -0.001 at flat index 0; expected finite values >= 0"},
      {"Adagrad", [](auto ps) { return std::make_unique<optim::Adagrad<double>>(ps, 0.1); },
       "array/sum/1", 1, -2.0,
       "sum of parameter 1 holds -2 at flat index 1; expected finite values >= 0"},
      {"SGD",
       [](auto ps) {
         return std::make_unique<optim::SGD<double>>(ps, 0.1, optim::SGDOptions().momentum(0.9));
       },
       "array/momentum_buffer/0", 0, -inf,
       "momentum_buffer of parameter 0 holds -inf at flat index 0; expected finite values"},
  };
  for (const auto& c : cases) {
    INFO(c.name, " ", c.member);
    nn::Linear<double> model(3, 2);
    auto optimizer = c.make(model.parameters());
    run_steps(*optimizer, 2);
    io::Checkpoint<double> checkpoint(model);
    checkpoint.add_optimizer(*optimizer);
    checkpoint.save(path, {0, 2});
    write_edited(path, edited, "optimizer0/" + c.member,
                 with_element(path, "optimizer0/" + c.member, c.element, c.value));
    const auto before = optimizer->state();
    CHECK(message_of([&] { checkpoint.load(edited); }) ==
          edited + ": cannot resume from this checkpoint (nothing was loaded): optimizer 0 (" +
              c.name + "): " + c.expected);
    CHECK(optimizer->state().arrays == before.arrays);
    run_steps(*optimizer, 1);  // and the run goes on with finite weights
    for (const auto& p : model.parameters()) CHECK(xt::all(xt::isfinite(p.value())));
  }
  // A step count of 2^53 or more (t enters the update as a double) is refused too.
  nn::Linear<double> model(3, 2);
  optim::Adam<double> optimizer(model.parameters());
  run_steps(optimizer, 1);
  io::Checkpoint<double> checkpoint(model);
  checkpoint.add_optimizer(optimizer);
  checkpoint.save(path, {0, 1});
  write_edited(path, edited, "optimizer0/count/step",
               io::NpyArray::from(xt::xarray<std::int64_t>{std::int64_t{1} << 53, 1}));
  CHECK(message_of([&] { checkpoint.load(edited); }) ==
        edited +
            ": cannot resume from this checkpoint (nothing was loaded): optimizer 0 (Adam): "
            "step of parameter 0 is 9007199254740992, expected a count below 2^53");
}

TEST_CASE("names from a checkpoint file are shown escaped: a NUL byte cuts no message short") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt"), edited = folder.file("edited.ckpt");
  SmallRun run;
  run.train(1);
  run.checkpoint.save(path, {1, 0});
  const std::string type("SG\0D\n", 5);
  write_edited(path, edited, "optimizer0/type",
               io::NpyArray(io::DType::uint8, Shape{type.size()},
                            std::vector<unsigned char>(type.begin(), type.end())));
  CHECK(message_of([&] { run.checkpoint.load(edited); }) ==
        edited +
            ": cannot resume from this checkpoint (nothing was loaded): optimizer 0 (SGD): "
            "the state is of SG\\0D\\n, this optimizer is SGD");
  const std::string schedule("Step\0LR", 7);
  write_edited(path, edited, "scheduler0/type",
               io::NpyArray(io::DType::uint8, Shape{schedule.size()},
                            std::vector<unsigned char>(schedule.begin(), schedule.end())));
  CHECK(message_of([&] { run.checkpoint.load(edited); }) ==
        edited +
            ": cannot resume from this checkpoint (nothing was loaded): schedule 0 "
            "(StepLR): the state is of Step\\0LR, this schedule is StepLR");
  // A setting's name, and the optimizer's own load_state() given such a state.
  auto state = run.optimizer.state();
  state.settings.emplace_back(std::string("mo\0re", 5), 1.0);
  CHECK_THROWS_WITH_AS(run.optimizer.load_state(state),
                       "SGD: cannot load the state: unexpected setting mo\\0re (this optimizer's "
                       "are: momentum, dampening, nesterov, weight_decay)",
                       ValueError);
}

TEST_CASE("Checkpoint::save refuses an optimizer whose parameter was resized since it was made") {
  test::ScratchFolder folder;
  const std::string path = folder.file("run.ckpt");
  SmallRun run;
  run.train(1);
  run.model.parameters()[2].set_value(test::random_array({5, 2}, 9));
  CHECK_THROWS_WITH_AS(
      run.checkpoint.save(path, {1, 0}),
      "Checkpoint::save: optimizer 0 (SGD): parameter 2 (2.weight) has shape (5, 2) but its "
      "state (momentum_buffer) has shape (4, 2): the parameter changed shape after the "
      "optimizer was made; nothing was written",
      ShapeError);
  CHECK(!std::ifstream(path).good());
}

// dist::save_checkpoint and dist::load_checkpoint under `mpirun -np 2` (tests/mpi/mpirun.sh).
//
//   checkpoint_checks --work DIR --checks
//       in one job: a save and a load give each rank its own dropout stream back; a file of
//       another world size, a checkpoint not told the world size, a save that cannot be
//       written and a rank that cannot load are refused on every rank (no hang).
//   checkpoint_checks --work DIR --out NAME [--every K] [--stop-after S] [--resume]
//       data-parallel training (Adam, StepLR, a dropout layer drawing from each rank's own
//       stream, DistributedSampler) to step 20, a checkpoint DIR/run.ckpt every K steps, a
//       clean stop after step S, or a start from DIR/run.ckpt; each rank then writes
//       DIR/NAME_rankR.bin (its parameters' bytes, its dropout generator's and its sampler's
//       state), which tests/mpi/checkpoint_resume.cmake compares between jobs, bit for bit.
//
// Exit status 0 when every check passed on every rank.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checks.hpp"
#include "tapegrad/dist/dist.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

using mpi_checks::check;

std::size_t my_rank() { return static_cast<std::size_t>(dist::rank()); }

// 49 samples of 5 features, 3 classes: with 2 ranks x 4 an epoch is 6 full global batches and
// one of a single sample (rank 1's last batch is empty), so 20 steps cross two epoch ends.
data::Dataset<double> toy_data() {
  Generator random(42);
  const std::size_t n = 49;
  xt::xarray<double> x = xt::xarray<double>::from_shape({n, std::size_t{5}});
  xt::xarray<double> y = xt::xarray<double>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < 5; ++j) x(i, j) = random.normal();
    y(i) = static_cast<double>(i % 3);
  }
  return data::Dataset<double>(x, y);
}

// One rank's run: the same model, optimizer and schedule on every rank, a dropout stream of
// its own (seed 100 + rank), this rank's sampler, and a checkpoint over all of it.
struct RankRun {
  RankRun()
      : data(toy_data()),
        dropout(100 + my_rank()),
        sampler(data.size(), 4, my_rank(), static_cast<std::size_t>(dist::world_size()),
                data::LoaderOptions().seed(11)),
        checkpoint(model) {
    model.push_back(
        std::make_shared<nn::Linear<double>>(5, 8, nn::LinearOptions().generator(init)));
    model.push_back(std::make_shared<nn::Tanh<double>>());
    model.push_back(std::make_shared<nn::Dropout<double>>(0.3, dropout));
    model.push_back(
        std::make_shared<nn::Linear<double>>(8, 3, nn::LinearOptions().generator(init)));
    dist::broadcast_parameters(model);
    parallel = std::make_unique<dist::DataParallel<double>>(model);
    adam = std::make_unique<optim::Adam<double>>(model.parameters(), 0.01);
    schedule = std::make_unique<optim::StepLR>(*adam, 1, 0.7);
    checkpoint.set_world_size(static_cast<std::size_t>(dist::world_size()), my_rank())
        .add_optimizer(*adam)
        .add_scheduler(*schedule)
        .add_generator("init", init)
        .add_rank_generator("dropout", dropout)
        .add_sampler(sampler);
  }

  // Trains from `start` to step `steps` in all, saving to `path` every `every` steps;
  // returns early, as a stopped job, after step `stop_after`.
  void train(io::TrainingPosition start, int steps, int every, int stop_after,
             const std::string& path) {
    const std::size_t per_epoch = sampler.batches_per_epoch();
    int done = static_cast<int>(start.epoch * per_epoch + start.step);
    for (std::size_t epoch = start.epoch; done < steps; ++epoch) {
      const auto batches = sampler.epoch();
      std::size_t s = epoch == start.epoch ? start.step : 0;
      for (; s < batches.size() && done < steps; ++s) {
        if (!batches[s].empty()) {
          const auto batch = data.subset(batches[s]);
          std::vector<std::size_t> labels;
          for (const double t : batch.targets) labels.push_back(static_cast<std::size_t>(t));
          Tape tape;
          nn::cross_entropy(model(Tensor<double>(batch.features)), labels).backward();
        }
        parallel->average_gradients(batches[s].size());
        adam->step();
        adam->zero_grad();
        ++done;
        if (every > 0 && done % every == 0) dist::save_checkpoint(checkpoint, path, {epoch, s + 1});
        if (done == stop_after) return;
      }
      if (s == batches.size()) schedule->step();
    }
  }

  data::Dataset<double> data;
  Generator init{7};
  Generator dropout;
  nn::Sequential<double> model;
  data::DistributedSampler sampler;
  std::unique_ptr<dist::DataParallel<double>> parallel;
  std::unique_ptr<optim::Adam<double>> adam;
  std::unique_ptr<optim::StepLR> schedule;
  io::Checkpoint<double> checkpoint;
};

// This rank's parameters' bytes, then its dropout generator's and sampler's states.
void write_result(RankRun& run, const std::string& file) {
  std::ofstream out(file, std::ios::binary);
  for (const auto& p : run.model.parameters()) {
    out.write(reinterpret_cast<const char*>(p.value().data()),
              static_cast<std::streamsize>(p.value().size() * sizeof(double)));
  }
  const std::uint64_t states[3] = {run.dropout.state(), run.sampler.position().epochs_drawn,
                                   run.sampler.position().random_state};
  out.write(reinterpret_cast<const char*>(states), sizeof states);
  check(out.good(), "wrote " + file);
}

// The ranks' parameters are bit-for-bit equal (rank 0's, broadcast, change nothing).
void check_ranks_agree(RankRun& run) {
  for (const auto& p : run.model.parameters()) {
    xt::xarray<double> mine = p.value(), root = p.value();
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
    check(mine == root, "the ranks' parameters are equal");
  }
}

template <class Error>
std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no exception of the expected type)";
}

void checks(const std::string& work) {
  const std::string path = work + "/checks.ckpt";
  // A save, some more draws, a load: each rank has its own stream again.
  RankRun run;
  run.train({}, 9, 0, -1, path);  // into epoch 1 (from 0): 7 steps per epoch
  dist::save_checkpoint(run.checkpoint, path, {1, 2});
  const auto saved = run.dropout.state();
  std::uint64_t other = saved;
  MPI_Bcast(&other, 1, MPI_UINT64_T, 1, MPI_COMM_WORLD);
  if (my_rank() == 0) check(saved != other, "the ranks' dropout streams differ");
  for (int i = 0; i < 3; ++i) run.dropout.uniform();
  RankRun fresh;
  const auto position = dist::load_checkpoint(fresh.checkpoint, path);
  check(position.epoch == 1 && position.step == 2, "the position is epoch 1, step 2");
  check(fresh.dropout.state() == saved, "each rank gets its own dropout stream back");
  check(fresh.sampler.epochs_drawn() == 1 &&
            fresh.sampler.position().random_state == run.sampler.latest_epoch_start().random_state,
        "the sampler is at the start of epoch 1");

  // A file of world size 1 (rank 0 alone, as a one-process run writes it) is refused by 2.
  if (my_rank() == 0) {
    RankRun* alone = &run;
    io::Checkpoint<double> single(alone->model);
    single.add_optimizer(*alone->adam)
        .add_scheduler(*alone->schedule)
        .add_generator("init", alone->init)
        .add_rank_generator("dropout", alone->dropout);
    single.save(work + "/single.ckpt", {0, 5});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::string message = message_of<io::IoError>(
      [&] { dist::load_checkpoint(fresh.checkpoint, work + "/single.ckpt"); });
  check(message.find("the file was written by a run of world size 1, this run has world size 2") !=
            std::string::npos,
        "a file of world size 1 is refused on every rank, got: '" + message + "'");

  // A checkpoint not told the world size: refused on every rank, nothing written.
  io::Checkpoint<double> untold(run.model);
  message = message_of<dist::DistError>([&] { dist::save_checkpoint(untold, path, {1, 2}); });
  check(message ==
            "dist::save_checkpoint: rank 0's checkpoint has world size 1 and rank 0, MPI 2 "
            "and 0; call set_world_size(dist::world_size(), dist::rank()) on it",
        "a checkpoint of world size 1 is refused, got: '" + message + "'");

  // Rank 0 cannot write: every rank throws IoError.
  const std::string nowhere = work + "/no_such_folder/run.ckpt";
  message = message_of<io::IoError>([&] {
    dist::save_checkpoint(run.checkpoint, nowhere, {1, 2});
  });
  if (my_rank() == 0) {
    check(message.find("no_such_folder") != std::string::npos,
          "rank 0's own error, got: '" + message + "'");
  } else {
    check(message.find("dist::save_checkpoint: rank 0 could not write " + nowhere + ": ") == 0,
          "the other ranks learn rank 0's failure, got: '" + message + "'");
  }

  // Rank 1 cannot load (its file is missing): every rank throws.
  const std::string mine = my_rank() == 1 ? work + "/missing.ckpt" : path;
  message = message_of<io::IoError>([&] { dist::load_checkpoint(fresh.checkpoint, mine); });
  if (my_rank() == 0) {
    check(message ==
              "dist::load_checkpoint: rank 1 could not load " + path +
                  " (its own error says why); this rank did, but the ranks must resume together",
          "rank 0 learns rank 1's failure, got: '" + message + "'");
  } else {
    check(message.find("missing.ckpt") != std::string::npos,
          "rank 1's own error, got: '" + message + "'");
  }
}

int run(int argc, char** argv) {
  std::string work, out;
  int every = 0, stop_after = -1;
  bool resume = false, run_checks = false;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    const bool has_value = i + 1 < argc;
    if (name == "--work" && has_value)
      work = argv[++i];
    else if (name == "--out" && has_value)
      out = argv[++i];
    else if (name == "--every" && has_value)
      every = std::atoi(argv[++i]);
    else if (name == "--stop-after" && has_value)
      stop_after = std::atoi(argv[++i]);
    else if (name == "--resume")
      resume = true;
    else if (name == "--checks")
      run_checks = true;
    else
      throw ValueError("checkpoint_checks: unknown argument " + name);
  }
  check(dist::world_size() == 2, "run under mpirun -np 2");
  check(!work.empty(), "--work DIR given");

  if (run_checks) {
    checks(work);
  } else {
    RankRun run;
    const std::string path = work + "/run.ckpt";
    io::TrainingPosition start;
    if (resume) {
      start = dist::load_checkpoint(run.checkpoint, path);
      if (my_rank() == 0) std::printf("resumed at epoch %zu, step %zu\n", start.epoch, start.step);
    }
    run.train(start, 20, every, stop_after, path);
    check(run.dropout.state() != Generator(100 + my_rank()).state(),
          "the dropout layer drew from this rank's stream");
    check_ranks_agree(run);
    write_result(run, work + "/" + out + "_rank" + std::to_string(my_rank()) + ".bin");
  }

  return mpi_checks::verdict("checkpoint_checks");
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment environment(argc, argv);
  return dist::run_or_abort([&] { return run(argc, argv); }, "checkpoint_checks");
}

// data::DistributedSampler: the ranks' shards of an epoch, checked against DataLoader (the
// single-process order) with plain numbers for rank and world size (no MPI).
#include <algorithm>
#include <numeric>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/data/distributed_sampler.hpp"

using namespace tapegrad;
using Indices = std::vector<std::size_t>;

namespace {

data::Dataset<double> numbered(std::size_t n) {
  xt::xarray<double> x = xt::xarray<double>::from_shape({n, std::size_t{1}});
  for (std::size_t i = 0; i < n; ++i) x(i, 0) = static_cast<double>(i);
  return data::Dataset<double>(x, x);
}

// One sampler per rank, each's next epoch.
std::vector<std::vector<Indices>> all_ranks_epoch(std::vector<data::DistributedSampler>& ranks) {
  std::vector<std::vector<Indices>> out;
  for (auto& s : ranks) out.push_back(s.epoch());
  return out;
}

std::vector<data::DistributedSampler> samplers(std::size_t n, std::size_t b, std::size_t w,
                                               const data::LoaderOptions& options) {
  std::vector<data::DistributedSampler> out;
  for (std::size_t r = 0; r < w; ++r) out.emplace_back(n, b, r, w, options);
  return out;
}

}  // namespace

TEST_CASE("DistributedSampler: the ranks' batches interleave into DataLoader's global batches") {
  // Sizes divisible by the global batch and not; remainders below and above the world size.
  struct Case {
    std::size_t n, local_batch, world;
  };
  for (const Case c : {Case{48, 4, 2}, Case{49, 4, 2}, Case{53, 4, 2}, Case{50, 3, 4},
                       Case{7, 5, 3}, Case{10, 1, 1}}) {
    CAPTURE(c.n);
    CAPTURE(c.local_batch);
    CAPTURE(c.world);
    const auto options = data::LoaderOptions().seed(11);
    auto ranks = samplers(c.n, c.local_batch, c.world, options);
    data::DataLoader<double> single(numbered(c.n), c.local_batch * c.world, options);
    for (int epoch = 0; epoch < 3; ++epoch) {
      const auto shards = all_ranks_epoch(ranks);
      const auto global = single.epoch();
      for (const auto& shard : shards) REQUIRE(shard.size() == global.size());
      std::vector<std::size_t> seen;
      for (std::size_t s = 0; s < global.size(); ++s) {
        // Global position k of batch s belongs to rank k % W, at k / W in its batch.
        Indices interleaved(global[s].indices.size());
        for (std::size_t k = 0; k < interleaved.size(); ++k) {
          REQUIRE(k / c.world < shards[k % c.world][s].size());
          interleaved[k] = shards[k % c.world][s][k / c.world];
        }
        std::size_t total = 0;
        for (const auto& shard : shards) {
          total += shard[s].size();
          seen.insert(seen.end(), shard[s].begin(), shard[s].end());
        }
        CHECK(total == global[s].indices.size());
        CHECK(interleaved == global[s].indices);
      }
      // Disjoint shards that together are exactly one epoch.
      std::sort(seen.begin(), seen.end());
      Indices all(c.n);
      std::iota(all.begin(), all.end(), std::size_t{0});
      CHECK(seen == all);
    }
  }
}

TEST_CASE("DistributedSampler: batch sizes and counts, with and without drop_last") {
  // 49 samples, 2 ranks x 4: six full global batches of 8, then 1 sample: rank 0 takes it,
  // rank 1's last batch is empty.
  data::DistributedSampler r0(49, 4, 0, 2), r1(49, 4, 1, 2);
  CHECK(r0.batches_per_epoch() == 7);
  CHECK(r1.batches_per_epoch() == 7);
  CHECK(r0.global_batch_size() == 8);
  CHECK(r0.shard_size() == 25);
  CHECK(r1.shard_size() == 24);
  const auto e0 = r0.epoch(), e1 = r1.epoch();
  CHECK(e0.back().size() == 1);
  CHECK(e1.back().empty());
  CHECK(e0.front().size() == 4);
  CHECK(r0.epochs_drawn() == 1);

  // drop_last leaves the last short global batch out on every rank, as DataLoader does.
  const auto options = data::LoaderOptions().seed(5).drop_last(true);
  auto ranks = samplers(53, 4, 2, options);
  data::DataLoader<double> single(numbered(53), 8, options);
  CHECK(ranks[0].batches_per_epoch() == 6);
  CHECK(ranks[1].shard_size() == 24);
  const auto shards = all_ranks_epoch(ranks);
  const auto global = single.epoch();
  REQUIRE(global.size() == 6);
  for (std::size_t s = 0; s < 6; ++s) {
    CHECK(shards[0][s] == Indices{global[s].indices[0], global[s].indices[2], global[s].indices[4],
                                  global[s].indices[6]});
    CHECK(shards[1][s].size() == 4);
  }
}

TEST_CASE(
    "DistributedSampler: without shuffle rank r takes r, r + W, r + 2W, ...; epochs differ with "
    "it") {
  data::DistributedSampler plain(10, 2, 1, 3, data::LoaderOptions().shuffle(false));
  CHECK(plain.epoch() == std::vector<Indices>{{1, 4}, {7}});

  data::DistributedSampler shuffled(40, 5, 0, 2, data::LoaderOptions().seed(3));
  const auto first = shuffled.epoch(), second = shuffled.epoch();
  CHECK(first != second);
  // Another seed, another order.
  data::DistributedSampler other(40, 5, 0, 2, data::LoaderOptions().seed(4));
  CHECK(other.epoch() != first);
}

TEST_CASE("DistributedSampler refuses impossible settings with a message naming the values") {
  CHECK_THROWS_WITH_AS(data::DistributedSampler(10, 2, 0, 0),
                       "DistributedSampler: world size 0; expected at least 1 process", ValueError);
  CHECK_THROWS_WITH_AS(data::DistributedSampler(10, 2, 2, 2),
                       "DistributedSampler: rank 2 with world size 2; expected a rank from 0 to 1",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      data::DistributedSampler(10, 0, 0, 2),
      "DistributedSampler: local batch size 0; expected at least 1 sample per rank and step",
      ValueError);
  CHECK_THROWS_WITH_AS(
      data::DistributedSampler(0, 2, 0, 2),
      "DistributedSampler: the dataset has no samples; give the sampler at least one", ValueError);
  CHECK_THROWS_WITH_AS(data::DistributedSampler(10, SIZE_MAX / 2, 0, 3),
                       doctest::Contains("times 3 ranks overflows the global batch size"),
                       ValueError);
  CHECK_THROWS_WITH_AS(
      data::DistributedSampler(10, 4, 0, 3, data::LoaderOptions().drop_last(true)),
      "DistributedSampler: global batch size 12 (3 ranks x 4) with drop_last exceeds the "
      "dataset's 10 samples, so every epoch would be empty; use a smaller batch or "
      "drop_last(false)",
      ValueError);
}

TEST_CASE("DistributedSampler: a position replays the same epochs, on any rank") {
  const auto options = data::LoaderOptions().seed(11);
  data::DistributedSampler rank1(49, 4, 1, 2, options);
  CHECK(rank1.latest_epoch_start().epochs_drawn == 0);
  CHECK(rank1.latest_epoch_start().random_state == rank1.position().random_state);
  rank1.epoch();
  const auto start = rank1.position();
  const auto second = rank1.epoch();
  CHECK(rank1.latest_epoch_start().epochs_drawn == 1);
  CHECK(rank1.latest_epoch_start().random_state == start.random_state);
  const auto third = rank1.epoch();
  CHECK(second != third);  // the epochs do differ

  data::DistributedSampler again(49, 4, 1, 2, options);
  again.set_position(start);
  CHECK(again.epochs_drawn() == 1);
  CHECK(again.latest_epoch_start().random_state == start.random_state);
  CHECK(again.epoch() == second);
  CHECK(again.epoch() == third);
  CHECK(again.epochs_drawn() == 3);

  // Rank 0 set to rank 1's position draws its own share of the same epoch.
  data::DistributedSampler rank0(49, 4, 0, 2, options);
  rank0.epoch();
  const auto rank0_second = rank0.epoch();
  data::DistributedSampler rank0_again(49, 4, 0, 2, options);
  rank0_again.set_position(start);
  CHECK(rank0_again.epoch() == rank0_second);
}

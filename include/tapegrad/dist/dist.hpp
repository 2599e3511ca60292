// tapegrad::dist in one include: MPI's environment, broadcast_parameters, DataParallel,
// save_checkpoint and load_checkpoint.
// (data::DistributedSampler is in the core: tapegrad/data/distributed_sampler.hpp.)
#pragma once

#include "tapegrad/data/distributed_sampler.hpp"
#include "tapegrad/dist/checkpoint.hpp"
#include "tapegrad/dist/data_parallel.hpp"
#include "tapegrad/dist/environment.hpp"

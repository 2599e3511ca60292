// Saves a model as NumPy would (.npz, through libzip) and loads it into another: a program
// that links tapegrad's file I/O, and with it libzip and zlib.
#include <cstdio>
#include <tapegrad/tapegrad.hpp>

int main() {
  using namespace tapegrad;
  Generator random(5);
  nn::MLP<double> saved({3, 4, 2}, nn::Activation::Tanh,
                        nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
  io::save_state(saved, "consumer_io_state.npz");
  nn::MLP<double> loaded({3, 4, 2}, nn::Activation::Tanh);
  io::load_state(loaded, "consumer_io_state.npz");
  const auto a = saved.parameters(), b = loaded.parameters();
  bool same = a.size() == b.size();
  for (std::size_t i = 0; same && i < a.size(); ++i) same = a[i].value() == b[i].value();
  std::printf("consumer_io: %zu parameters saved and loaded back %s\n", a.size(),
              same ? "equal" : "DIFFERENT");
  return same ? 0 : 1;
}

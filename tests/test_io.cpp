// io: .npy/.npz round trips, NumPy in both directions, atomic writes, module state, IDX,
// CSV, and a clear error for every kind of malformed file.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <functional>
#include <thread>

#include "helpers.hpp"
#include "io_helpers.hpp"
#include "tapegrad/data/fashion_mnist.hpp"
#include "tapegrad/io/atomic_file.hpp"
#include "tapegrad/io/checkpoint.hpp"
#include "tapegrad/io/csv.hpp"
#include "tapegrad/io/idx.hpp"
#include "tapegrad/io/npy.hpp"
#include "tapegrad/io/npz.hpp"
#include "tapegrad/io/state.hpp"
#include "tapegrad/io/torch_state.hpp"

using namespace tapegrad;
using io::IoError;

namespace {

template <class T>
xt::xarray<T> sample(const Shape& shape) {
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i)
    a.data()[i] = static_cast<T>(i % 7 == 0 ? 250 : i * 3 + 1) / T(2);
  return a;
}

template <class T>
void check_npy_round_trip(const test::ScratchFolder& folder) {
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3, 4}, Shape{0, 3}}) {
    const auto a = sample<T>(shape);
    const std::string path = folder.file("a.npy");
    io::save_npy(path, a);
    const auto back = io::read_npy(path);
    CHECK(back.dtype() == io::dtype_of<T>());
    CHECK(back.shape() == shape);
    CHECK(back.to<T>() == a);
  }
}

// The names of the files in a folder.
std::vector<std::string> listing(const std::string& folder) {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(folder.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
  }
  return names;
}

void throwing_hook(const std::string&) {
  throw std::runtime_error("simulated crash before rename");
}
void exiting_hook(const std::string&) { ::_exit(3); }

}  // namespace

TEST_CASE(".npy round trips for every dtype and shape") {
  test::ScratchFolder folder;
  check_npy_round_trip<float>(folder);
  check_npy_round_trip<double>(folder);
  check_npy_round_trip<std::int32_t>(folder);
  check_npy_round_trip<std::int64_t>(folder);
  check_npy_round_trip<std::uint8_t>(folder);
  // The header is NumPy's, byte for byte: 'descr', order, shape, padded to 64 bytes.
  const auto bytes = io::serialize_npy(io::NpyArray::from(xt::xarray<double>{1.0, 2.0, 3.0}));
  const std::string header(bytes.begin() + 10, bytes.begin() + 10 + bytes[8]);
  CHECK(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 0) == 0);
  CHECK((10 + header.size()) % 64 == 0);
  CHECK(header.back() == '\n');
}

TEST_CASE(".npz round trips, compressed or stored, with names kept in order") {
  test::ScratchFolder folder;
  for (bool compress : {true, false}) {
    const io::NpzArchive arrays = {{"w", io::NpyArray::from(sample<double>({3, 2}))},
                                   {"0.bias", io::NpyArray::from(sample<float>({4}))},
                                   {"labels", io::NpyArray::from(sample<std::uint8_t>({6}))}};
    io::write_npz(folder.file("a.npz"), arrays, compress);
    const auto back = io::read_npz(folder.file("a.npz"));
    REQUIRE(back.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(back[i].first == arrays[i].first);
      CHECK(back[i].second.dtype() == arrays[i].second.dtype());
      CHECK(back[i].second.bytes() == arrays[i].second.bytes());
    }
  }
  CHECK_THROWS_AS(
      io::write_npz(folder.file("b.npz"), {{"x", io::NpyArray::from(sample<double>({1}))},
                                           {"x", io::NpyArray::from(sample<double>({1}))}}),
      ValueError);
}

TEST_CASE("a module's state round trips and a mismatched file is refused whole") {
  test::ScratchFolder folder;
  Generator random(1);
  nn::MLP<double> model({3, 5, 2}, nn::Activation::Tanh,
                        nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
  io::save_state(model, folder.file("model.npz"));
  nn::MLP<double> other({3, 5, 2}, nn::Activation::Tanh);
  io::load_state(other, folder.file("model.npz"));
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(other.parameters()[i].value() == model.parameters()[i].value());

  nn::MLP<double> wider({3, 6, 2}, nn::Activation::Tanh);
  const auto before = wider.parameters()[0].value();
  CHECK_THROWS_WITH_AS(
      io::load_state(wider, folder.file("model.npz")),
      doctest::Contains("0.weight has shape (3, 5) in the file but (3, 6) in the model"), IoError);
  CHECK(wider.parameters()[0].value() == before);  // nothing was loaded

  nn::MLP<double> deeper({3, 5, 5, 2}, nn::Activation::Tanh);
  try {
    io::load_state(deeper, folder.file("model.npz"));
    FAIL("a deeper model loaded a shallower state");
  } catch (const IoError& e) {
    const std::string message = e.what();
    CHECK(message.find("missing 4.weight") != std::string::npos);
    CHECK(message.find("missing 4.bias") != std::string::npos);
    CHECK(message.find("2.weight has shape (5, 2) in the file but (5, 5)") != std::string::npos);
  }
  nn::MLP<double> shallower({3, 2}, nn::Activation::Tanh);
  CHECK_THROWS_WITH_AS(io::load_state(shallower, folder.file("model.npz")),
                       doctest::Contains("unexpected 2.bias"), IoError);
  nn::MLP<float> single({3, 5, 2}, nn::Activation::Tanh);
  CHECK_THROWS_WITH_AS(
      io::load_state(single, folder.file("model.npz")),
      doctest::Contains("0.weight is float64 in the file but float32 in the model"), IoError);
}

TEST_CASE("an interrupted save leaves the previous file readable") {
  test::ScratchFolder folder;
  const std::string path = folder.file("weights.npy");
  const auto old_value = sample<double>({4});
  io::save_npy(path, old_value);

  io::detail::before_rename_hook = &throwing_hook;
  CHECK_THROWS_AS(io::save_npy(path, sample<double>({100})), std::runtime_error);
  io::detail::before_rename_hook = nullptr;
  CHECK(io::load_npy<double>(path) == old_value);
  CHECK(listing(folder.path()) == std::vector<std::string>{"weights.npy"});  // no temporary left

  // A real crash: the process ends between writing the new file and renaming it.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    io::detail::before_rename_hook = &exiting_hook;
    io::save_npy(path, sample<double>({100}));
    ::_exit(0);  // not reached
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  CHECK(io::load_npy<double>(path) == old_value);

  CHECK_THROWS_WITH_AS(io::save_npy(folder.file("no/such/folder/x.npy"), old_value),
                       doctest::Contains("cannot create a temporary file"), IoError);
}

TEST_CASE("IDX files, plain and gzip, with every element type") {
  test::ScratchFolder folder;
  // 2 x 3 ubyte
  std::vector<unsigned char> ubyte = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 5, 6};
  test::write_bytes(folder.file("u.idx"), ubyte);
  const auto u = io::read_idx<double>(folder.file("u.idx"));
  CHECK(u.shape() == Shape{2, 3});
  CHECK(u(1, 0) == 250);
  // int32 big-endian, 1-d
  std::vector<unsigned char> ints = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 1, 0};
  test::write_bytes(folder.file("i.idx"), ints);
  CHECK(io::read_idx<double>(folder.file("i.idx")) == xt::xarray<double>{-2, 256});
  // float64 big-endian
  std::vector<unsigned char> doubles = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0};
  test::write_bytes(folder.file("d.idx"), doubles);
  CHECK(io::read_idx<double>(folder.file("d.idx"))(0) == 1.5);
  // gzip of the ubyte file, made by the system's gzip
  REQUIRE(std::system(("gzip -k '" + folder.file("u.idx") + "'").c_str()) == 0);
  CHECK(io::read_idx<double>(folder.file("u.idx.gz")) == u);
}

TEST_CASE("CSV tables round trip and bad cells are named by line and column") {
  test::ScratchFolder folder;
  const xt::xarray<double> values = {{1.5, -2.0, 1e-300}, {0.1, 3.0, 4.25}};
  io::write_csv(folder.file("t.csv"), values, {"a", "b", "c"});
  const auto table = io::read_csv(folder.file("t.csv"), true);
  CHECK(table.header == std::vector<std::string>{"a", "b", "c"});
  CHECK(table.values == values);  // 17 digits: exact
  test::write_text(folder.file("s.csv"), "1; 2\n\n 3 ;4 \n");
  CHECK(io::read_csv(folder.file("s.csv"), false, ';').values ==
        xt::xarray<double>{{1, 2}, {3, 4}});
  test::write_text(folder.file("bad.csv"), "x,y\n1,2\n3,abc\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("bad.csv"), true),
                       doctest::Contains("bad.csv:3:2: 'abc' is not a number"), IoError);
  test::write_text(folder.file("ragged.csv"), "1,2\n3\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("ragged.csv")),
                       doctest::Contains("ragged.csv:2: 1 cells, expected 2"), IoError);
  test::write_text(folder.file("empty_cell.csv"), "1,,2\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("empty_cell.csv")),
                       doctest::Contains("'' is not a number"), IoError);
  CHECK_THROWS_AS(io::write_csv(folder.file("h.csv"), values, {"only one"}), ValueError);
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("missing.csv")), doctest::Contains("cannot open"),
                       IoError);
}

TEST_CASE("malformed .npy, .npz and IDX files give clear errors") {
  test::ScratchFolder folder;
  const auto good = io::serialize_npy(io::NpyArray::from(sample<double>({2, 3})));
  auto expect_error = [&](const std::string& name, const std::vector<unsigned char>& bytes,
                          const std::string& fragment, auto reader) {
    test::write_bytes(folder.file(name), bytes);
    INFO(name);
    CHECK_THROWS_WITH_AS(reader(folder.file(name)), doctest::Contains(fragment.c_str()), IoError);
  };
  auto npy = [](const std::string& p) { return io::read_npy(p); };
  auto npz = [](const std::string& p) { return io::read_npz(p); };
  auto idx = [](const std::string& p) { return io::read_idx<double>(p); };
  auto with_header = [&](const std::string& dict, std::size_t data_bytes) {
    std::string b = "\x93NUMPY";
    b += '\x01';
    b += '\0';
    b += static_cast<char>(dict.size());
    b += '\0';
    b += dict;
    b.append(data_bytes, '\0');
    return std::vector<unsigned char>(b.begin(), b.end());
  };

  expect_error("magic.npy", {'N', 'O', 'T', 'N', 'P', 'Y', 1, 0, 0, 0}, "bad magic string", npy);
  expect_error("short.npy", {0x93, 'N'}, "bad magic string", npy);
  expect_error("version.npy", {0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0}, "version 9", npy);
  expect_error("header_cut.npy", std::vector<unsigned char>(good.begin(), good.begin() + 40),
               "truncated header", npy);
  expect_error("data_cut.npy", std::vector<unsigned char>(good.begin(), good.end() - 8),
               "truncated: 40 of 48 data bytes", npy);
  auto extra = good;
  extra.push_back(0);
  expect_error("extra.npy", extra, "1 bytes follow the data", npy);
  expect_error("dtype.npy",
               with_header("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", 16),
               "dtype '<c16' is not supported", npy);
  expect_error("dict.npy",
               with_header("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,), }", 8),
               "expected True or False", npy);
  expect_error("key.npy",
               with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", 8),
               "unexpected key 'x'", npy);
  expect_error(
      "huge.npy",
      with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 4000000000), }",
                  8),
      "too large", npy);
  expect_error(
      "zero_hides_overflow.npy",
      with_header(
          "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4611686018427387904, 8), }", 0),
      "too large", npy);
  expect_error(
      "huge_but_valid_product.npy",
      with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", 8),
      "truncated", npy);

  expect_error("not_zip.npz", {'h', 'e', 'l', 'l', 'o'}, "not a readable .npz", npz);
  io::write_npz(folder.file("good.npz"), {{"x", io::NpyArray::from(sample<double>({50}))}}, false);
  auto archive = test::read_bytes(folder.file("good.npz"));
  expect_error("cut.npz",
               std::vector<unsigned char>(archive.begin(), archive.begin() + archive.size() / 2),
               "not a readable .npz", npz);
  auto flipped = archive;
  flipped[60] ^= 0xFF;  // inside the stored member: the CRC no longer matches
  expect_error("crc.npz", flipped, "member 'x.npy'", npz);
  REQUIRE(std::system(("cd '" + folder.path() +
                       "' && printf hi > note.txt && " TAPEGRAD_PYTHON
                       " -c \"import zipfile; z = zipfile.ZipFile('other.npz', 'w'); "
                       "z.write('note.txt'); z.close()\"")
                          .c_str()) == 0);
  CHECK_THROWS_WITH_AS(io::read_npz(folder.file("other.npz")),
                       doctest::Contains("is not a .npy file"), IoError);

  expect_error("magic.idx", {1, 2, 3, 4, 0, 0, 0, 1, 9}, "bad magic number", idx);
  expect_error("type.idx", {0, 0, 0x07, 1, 0, 0, 0, 1, 9}, "unknown IDX element type 0x07", idx);
  expect_error("dims.idx", {0, 0, 0x08, 0}, "0 dimensions", idx);
  expect_error("cut.idx", {0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2}, "truncated: 2 of 5 data bytes", idx);
  expect_error("extra.idx", {0, 0, 0x08, 1, 0, 0, 0, 1, 1, 2}, "data continues", idx);
  expect_error("zero_hides_overflow.idx",
               {0, 0, 0x08, 3, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
               "too large", idx);
  expect_error("claims_4gb.idx", {0, 0, 0x08, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 1},
               "truncated: 1 of", idx);
  std::vector<unsigned char> not_gzip_body = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF};
  test::write_bytes(folder.file("corrupt.idx.gz"), not_gzip_body);
  CHECK_THROWS_AS(io::read_idx<double>(folder.file("corrupt.idx.gz")), IoError);
  CHECK_THROWS_WITH_AS(io::read_idx<double>(folder.file("absent.idx")),
                       doctest::Contains("cannot open"), IoError);
}

TEST_CASE("the regression corpus of malformed files: every one is refused with an IoError") {
  std::size_t files = 0;
  for (const std::string format : {"npy", "npz", "idx", "csv"}) {
    const std::string folder = std::string(TAPEGRAD_CORPUS_DIR) + "/" + format;
    for (const auto& name : listing(folder)) {
      const std::string path = folder + "/" + name;
      INFO(path);
      ++files;
      if (format == "npy") CHECK_THROWS_AS(io::read_npy(path), IoError);
      if (format == "npz") CHECK_THROWS_AS(io::read_npz(path), IoError);
      if (format == "idx") CHECK_THROWS_AS(io::read_idx<double>(path), IoError);
      if (format == "csv") CHECK_THROWS_AS(io::read_csv(path), IoError);
    }
  }
  CHECK(files >= 12);
}

TEST_SUITE("numpy") {
  TEST_CASE("NumPy reads what tapegrad writes, and tapegrad reads what NumPy writes") {
    test::ScratchFolder folder;
    // tapegrad -> NumPy
    Generator random(4);
    nn::MLP<double> model({2, 3, 1}, nn::Activation::Sigmoid,
                          nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
    io::save_state(model, folder.file("state.npz"));
    io::save_npy(folder.file("f32.npy"), sample<float>({2, 2}));
    io::write_npz(folder.file("stored.npz"), {{"a", io::NpyArray::from(sample<std::int64_t>({3}))}},
                  false);
    const auto& w = model.linear_layers()[0]->weight().value();
    char check[1024];
    std::snprintf(
        check, sizeof check,
        "import numpy as np\n"
        "s = np.load('state.npz')\n"
        "assert sorted(s.files) == ['0.bias', '0.weight', '2.bias', '2.weight'], s.files\n"
        "assert s['0.weight'].shape == (2, 3) and s['0.weight'].dtype == np.float64\n"
        "assert s['0.weight'][1, 2] == %.17g\n"
        "f = np.load('f32.npy'); assert f.dtype == np.float32 and f.shape == (2, 2) and f[1, 1] == "
        "%.9g\n"
        "a = np.load('stored.npz')['a']; assert a.dtype == np.int64 and list(a) == [125, 2, 3]\n",
        w(1, 2), static_cast<double>(sample<float>({2, 2})(1, 1)));
    test::write_text(folder.file("check.py"), check);
    CHECK(std::system(("cd '" + folder.path() + "' && " TAPEGRAD_PYTHON " check.py").c_str()) == 0);

    // NumPy -> tapegrad
    const char* make =
        "import numpy as np\n"
        "np.save('d.npy', np.arange(12, dtype=np.float64).reshape(3, 4) / 4)\n"
        "np.save('f.npy', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))\n"
        "np.save('be.npy', np.arange(3, dtype='>i4'))\n"
        "np.save('u.npy', np.array([0, 200, 255], dtype=np.uint8))\n"
        "np.save('s.npy', np.float64(2.5))\n"
        "np.savez('plain.npz', x=np.ones((2, 2)), y=np.arange(3, dtype=np.int32))\n"
        "np.savez_compressed('packed.npz', big=np.linspace(0, 1, 1000))\n";
    test::write_text(folder.file("make.py"), make);
    REQUIRE(std::system(("cd '" + folder.path() + "' && " TAPEGRAD_PYTHON " make.py").c_str()) ==
            0);
    const auto d = io::load_npy<double>(folder.file("d.npy"));
    CHECK(d.shape() == Shape{3, 4});
    CHECK(d(2, 3) == 11.0 / 4);
    const auto f = io::read_npy(folder.file("f.npy"));
    CHECK(f.dtype() == io::DType::float32);
    CHECK(f.to<float>() == xt::xarray<float>{{0, 1, 2}, {3, 4, 5}});  // Fortran order undone
    CHECK(io::load_npy<double>(folder.file("be.npy")) == xt::xarray<double>{0, 1, 2});
    CHECK(io::load_npy<double>(folder.file("u.npy")) == xt::xarray<double>{0, 200, 255});
    CHECK(io::load_npy<double>(folder.file("s.npy"))() == 2.5);
    const auto plain = io::read_npz(folder.file("plain.npz"));
    REQUIRE(plain.size() == 2);
    CHECK(plain[0].first == "x");
    CHECK(plain[1].second.dtype() == io::DType::int32);
    const auto packed = io::read_npz(folder.file("packed.npz"));
    CHECK(packed[0].second.to<double>()(999) == 1.0);
  }
}

TEST_CASE("atomic writes give the file the permissions a plain write would") {
  struct UmaskGuard {
    mode_t previous = ::umask(027);
    ~UmaskGuard() { ::umask(previous); }
  } umask_027;
  const test::ScratchFolder folder;
  const std::string path = folder.file("w.npy");
  io::save_npy(path, sample<double>({3}));
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0640);
  REQUIRE(::chmod(path.c_str(), 0604) == 0);  // a replaced file keeps its own mode
  io::save_npy(path, sample<double>({4}));
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0604);
}

TEST_CASE("NpyArray::to truncates like NumPy and refuses what the integer type cannot hold") {
  using io::NpyArray;
  const auto floats = NpyArray::from(xt::xarray<double>{1.5, -2.0, 3e10});
  CHECK_THROWS_WITH_AS(floats.to<std::int32_t>(), doctest::Contains("element 2"), ValueError);
  CHECK(floats.to<std::int64_t>() == xt::xarray<std::int64_t>{1, -2, 30000000000});
  // Truncated first: -0.5 and 255.5 fit in uint8; the bounds are exact powers of two.
  CHECK(NpyArray::from(xt::xarray<double>{-0.5, 255.5}).to<std::uint8_t>() ==
        xt::xarray<std::uint8_t>{0, 255});
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<double>{256.0}).to<std::uint8_t>(), ValueError);
  CHECK(NpyArray::from(xt::xarray<double>{-2147483648.0}).to<std::int32_t>()(0) == INT32_MIN);
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<double>{2147483648.0}).to<std::int32_t>(), ValueError);
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<double>{0x1p63}).to<std::int64_t>(), ValueError);
  // A double beyond float's range would become inf (and the cast is undefined): refused;
  // infinities and NaN stay what they are.
  CHECK_THROWS_WITH_AS(
      NpyArray::from(xt::xarray<double>{1.0, 1e300}).to<float>(),
      "NpyArray::to: element 1 (1e+300) of a float64 array does not fit in float32", ValueError);
  const auto special = NpyArray::from(xt::xarray<double>{INFINITY, -3.0e38, NAN}).to<float>();
  CHECK(special(0) == INFINITY);
  CHECK(special(1) == -3.0e38f);
  CHECK(std::isnan(special(2)));
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<double>{std::nan("")}).to<std::int64_t>(), ValueError);
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<std::int32_t>{-1}).to<std::uint8_t>(), ValueError);
  CHECK_THROWS_AS(NpyArray::from(xt::xarray<std::int64_t>{1LL << 40}).to<std::int32_t>(),
                  ValueError);
  CHECK(NpyArray::from(xt::xarray<std::int32_t>{-1}).to<double>() == xt::xarray<double>{-1.0});
}

TEST_CASE("write_csv refuses header names that would not read back") {
  const test::ScratchFolder folder;
  const xt::xarray<double> a{{1.0, 2.0}};
  CHECK_THROWS_WITH_AS(io::write_csv(folder.file("a.csv"), a, {"x,y", "z"}),
                       doctest::Contains("'x,y'"), ValueError);
  CHECK_THROWS_AS(io::write_csv(folder.file("a.csv"), a, {"x", "line\nbreak"}), ValueError);
  CHECK_THROWS_AS(io::write_csv(folder.file("a.csv"), a, {"\"q\"", "z"}), ValueError);
  CHECK_THROWS_AS(io::write_csv(folder.file("a.csv"), a, {"x", ""}), ValueError);
  CHECK_THROWS_AS(io::write_csv(folder.file("a.csv"), a, {" x", "z"}), ValueError);
  CHECK_THROWS_AS(io::write_csv(folder.file("a.csv"), a, {"x", "z\t"}), ValueError);
  io::write_csv(folder.file("a.csv"), a, {"x;y", "z"});  // another delimiter's character is fine
  CHECK(io::read_csv(folder.file("a.csv"), true).header == std::vector<std::string>{"x;y", "z"});
}

TEST_CASE("read_idx into an integer type refuses values the type cannot hold, as NpyArray::to") {
  const test::ScratchFolder folder;
  // float64 big-endian: 1.5, -2, 3e9, NaN
  const std::vector<unsigned char> doubles = {0,    0,    0x0E, 1,    0,    0, 0, 4,   //
                                              0x3F, 0xF8, 0,    0,    0,    0, 0, 0,   // 1.5
                                              0xC0, 0x00, 0,    0,    0,    0, 0, 0,   // -2
                                              0x41, 0xE6, 0x5A, 0x0B, 0xC0, 0, 0, 0,   // 3e9
                                              0x7F, 0xF8, 0,    0,    0,    0, 0, 0};  // NaN
  test::write_bytes(folder.file("d.idx"), doubles);
  CHECK_THROWS_WITH_AS(io::read_idx<std::int32_t>(folder.file("d.idx")),
                       doctest::Contains((folder.file("d.idx") +
                                          ": element 2 (3000000000) of the double data does not "
                                          "fit in int32")
                                             .c_str()),
                       IoError);
  // 1.5 is truncated toward 0, as NpyArray::to and NumPy's astype do; -2 fits no unsigned type.
  auto first_two = doubles;
  first_two[7] = 2;
  first_two.resize(8 + 16);
  test::write_bytes(folder.file("two.idx"), first_two);
  CHECK(io::read_idx<std::int32_t>(folder.file("two.idx")) == xt::xarray<std::int32_t>{1, -2});
  CHECK_THROWS_WITH_AS(io::read_idx<std::uint8_t>(folder.file("two.idx")),
                       doctest::Contains("element 1 (-2) of the double data does not fit in uint8"),
                       IoError);
  auto nan_only = std::vector<unsigned char>{0, 0, 0x0E, 1, 0, 0, 0, 1};
  nan_only.insert(nan_only.end(), doubles.end() - 8, doubles.end());
  test::write_bytes(folder.file("nan.idx"), nan_only);
  CHECK_THROWS_WITH_AS(
      io::read_idx<std::int32_t>(folder.file("nan.idx")),
      doctest::Contains("element 0 (nan) of the double data does not fit in int32"), IoError);
  CHECK(std::isnan(io::read_idx<float>(folder.file("nan.idx"))(0)));
  // A double beyond float's range is refused too (it would become inf).
  auto huge = std::vector<unsigned char>{0,    0,    0x0E, 1,    0,    0, 0,    1,
                                         0x7E, 0x37, 0xE4, 0x3C, 0x88, 0, 0x75, 0x9C};  // 1e300
  test::write_bytes(folder.file("huge.idx"), huge);
  CHECK_THROWS_WITH_AS(
      io::read_idx<float>(folder.file("huge.idx")),
      doctest::Contains(
          "element 0 (1.0000000000000001e+300) of the double data does not fit in float32"),
      IoError);
  CHECK(io::read_idx<double>(folder.file("huge.idx"))(0) == 1e300);
  // int32 300 and int8 -1 do not fit in uint8; 255 does.
  test::write_bytes(folder.file("i.idx"), {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 255, 0, 0, 1, 44});
  CHECK_THROWS_WITH_AS(io::read_idx<std::uint8_t>(folder.file("i.idx")),
                       doctest::Contains("element 1 (300) of the int data does not fit in uint8"),
                       IoError);
  test::write_bytes(folder.file("b.idx"), {0, 0, 0x09, 1, 0, 0, 0, 2, 5, 0xFF});
  CHECK_THROWS_WITH_AS(io::read_idx<std::uint8_t>(folder.file("b.idx")),
                       doctest::Contains("element 1 (-1) of the byte data does not fit in uint8"),
                       IoError);
  CHECK(io::read_idx<std::int32_t>(folder.file("b.idx")) == xt::xarray<std::int32_t>{5, -1});
  // float32 infinity
  test::write_bytes(folder.file("f.idx"), {0, 0, 0x0D, 1, 0, 0, 0, 1, 0xFF, 0x80, 0, 0});
  CHECK_THROWS_WITH_AS(
      io::read_idx<std::int32_t>(folder.file("f.idx")),
      doctest::Contains("element 0 (-inf) of the float data does not fit in int32"), IoError);
}

TEST_CASE("gzipped IDX files: decompression bombs and trailing bytes are refused") {
  const test::ScratchFolder folder;
  auto with_zeros = [](std::vector<unsigned char> header, std::size_t zeros) {
    header.resize(header.size() + zeros, 0);
    return header;
  };
  // The header claims 2^19 x 2^20 bytes; 1 MiB of zeros follows, about 1 KB once deflated.
  const auto bomb =
      test::gzip_bytes(with_zeros({0, 0, 0x08, 2, 0, 0x08, 0, 0, 0, 0x10, 0, 0}, 1 << 20));
  REQUIRE(!bomb.empty());
  CHECK(bomb.size() < 4096);
  test::write_bytes(folder.file("bomb.idx.gz"), bomb);
  CHECK_THROWS_WITH_AS(
      io::read_idx<std::uint8_t>(folder.file("bomb.idx.gz")),
      doctest::Contains(("bomb.idx.gz: shape (524288, 1048576) of ubyte would take "
                         "549755813888 bytes from a gzip file of " +
                         std::to_string(bomb.size()) +
                         " bytes, more than 1100 times its size (+1 KiB): "
                         "refused as a decompression bomb")
                            .c_str()),
      IoError);

  // All 4 MiB present: the ratio of a real deflate stream of zeros (about 1030), so it reads
  // as uint8, but as double or float it would take 8 or 4 times more memory than the limit.
  const auto zeros_plain = with_zeros({0, 0, 0x08, 1, 0, 0x40, 0, 0}, 1 << 22);
  const auto zeros = test::gzip_bytes(zeros_plain);
  test::write_bytes(folder.file("zeros.idx.gz"), zeros);
  CHECK(io::read_idx<std::uint8_t>(folder.file("zeros.idx.gz")).size() == (1u << 22));
  CHECK_THROWS_WITH_AS(io::read_idx<double>(folder.file("zeros.idx.gz")),
                       doctest::Contains("shape (4194304,) of ubyte would take 33554432 bytes as "
                                         "float64 from a gzip file of"),
                       IoError);
  CHECK_THROWS_WITH_AS(io::read_idx<float>(folder.file("zeros.idx.gz")),
                       doctest::Contains("gunzip it to read it anyway"), IoError);
  test::write_bytes(folder.file("zeros.idx"), zeros_plain);  // an uncompressed file has no limit
  CHECK(io::read_idx<float>(folder.file("zeros.idx")).size() == (1u << 22));

  // Bytes after the gzip stream are refused, as bytes after the data of a plain file are;
  // a second gzip member is part of the stream (gzip -d reads both too).
  const std::vector<unsigned char> small = {0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9};
  auto trailing = test::gzip_bytes(small);
  for (unsigned char c : std::string("junk")) trailing.push_back(c);
  test::write_bytes(folder.file("trailing.idx.gz"), trailing);
  CHECK_THROWS_WITH_AS(io::read_idx<double>(folder.file("trailing.idx.gz")),
                       doctest::Contains("trailing.idx.gz: 4 bytes follow the gzip stream"),
                       IoError);
  auto zero_padded = test::gzip_bytes(small);
  zero_padded.push_back(0);
  test::write_bytes(folder.file("padded.idx.gz"), zero_padded);
  CHECK_THROWS_WITH_AS(io::read_idx<double>(folder.file("padded.idx.gz")),
                       doctest::Contains("1 bytes follow the gzip stream"), IoError);
  auto two_members = test::gzip_bytes({small.begin(), small.begin() + 9});
  const auto second = test::gzip_bytes({small.begin() + 9, small.end()});
  two_members.insert(two_members.end(), second.begin(), second.end());
  test::write_bytes(folder.file("two.idx.gz"), two_members);
  CHECK(io::read_idx<double>(folder.file("two.idx.gz")) == xt::xarray<double>{7, 8, 9});
  auto cut = test::gzip_bytes(small);
  cut.resize(cut.size() - 3);  // inside the trailer: the stream never ends
  test::write_bytes(folder.file("cut.idx.gz"), cut);
  CHECK_THROWS_WITH_AS(io::read_idx<double>(folder.file("cut.idx.gz")),
                       doctest::Contains("cut.idx.gz: truncated gzip stream"), IoError);
}

TEST_CASE("an empty .npz file is refused, not read as an empty archive") {
  const test::ScratchFolder folder;
  test::write_bytes(folder.file("empty.npz"), {});
  CHECK_THROWS_WITH_AS(io::read_npz(folder.file("empty.npz")),
                       doctest::Contains("empty.npz: empty file, not a .npz (zip) archive"),
                       IoError);
  CHECK_THROWS_WITH_AS(io::parse_npz(nullptr, 0, "memory"),
                       doctest::Contains("memory: empty file, not a .npz (zip) archive"), IoError);
  // An archive with no members (numpy.savez() with no arrays) is still read.
  io::write_npz(folder.file("none.npz"), {});
  CHECK(io::read_npz(folder.file("none.npz")).empty());
}

TEST_CASE("atomic writes through a symbolic link replace the link's target, not the link") {
  const test::ScratchFolder folder;
  REQUIRE(::mkdir(folder.file("real").c_str(), 0755) == 0);
  const std::string target = folder.file("real/w.npy");
  io::save_npy(target, sample<double>({2}));
  // link -> real/w.npy (relative), and chain -> link (absolute): both resolved.
  REQUIRE(::symlink("real/w.npy", folder.file("link").c_str()) == 0);
  REQUIRE(::symlink(folder.file("link").c_str(), folder.file("chain").c_str()) == 0);
  for (const std::string name : {"link", "chain"}) {
    INFO(name);
    const auto value = sample<double>({name.size()});
    io::save_npy(folder.file(name), value);
    struct stat info {};
    REQUIRE(::lstat(folder.file(name).c_str(), &info) == 0);
    CHECK(S_ISLNK(info.st_mode));
    CHECK(io::load_npy<double>(target) == value);
  }
  // The temporary file was made beside the target, and none is left anywhere.
  CHECK(listing(folder.file("real")) == std::vector<std::string>{"w.npy"});
  CHECK(listing(folder.path()).size() == 3);
  // A dangling link: its target is created, as cp would create it.
  REQUIRE(::symlink("real/new.npy", folder.file("dangling").c_str()) == 0);
  io::save_npy(folder.file("dangling"), sample<double>({3}));
  CHECK(io::load_npy<double>(folder.file("real/new.npy")) == sample<double>({3}));
  // A loop of links is an error, not a hang.
  REQUIRE(::symlink("loop_b", folder.file("loop_a").c_str()) == 0);
  REQUIRE(::symlink("loop_a", folder.file("loop_b").c_str()) == 0);
  CHECK_THROWS_WITH_AS(io::save_npy(folder.file("loop_a"), sample<double>({1})),
                       doctest::Contains("loop_a: cannot resolve the symbolic link"), IoError);
}

TEST_CASE("a temporary file left by a killed writer is removed by the next save of that file") {
  const test::ScratchFolder folder;
  const std::string path = folder.file("w.npy");
  io::save_npy(path, sample<double>({2}));
  // kill -9 between writing the temporary file and renaming it.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    io::detail::before_rename_hook = [](const std::string&) { ::raise(SIGKILL); };
    io::save_npy(path, sample<double>({100}));
    ::_exit(0);  // not reached
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  const std::string leftover = ".w.npy.tapegrad-tmp-";
  auto names = listing(folder.path());
  std::sort(names.begin(), names.end());
  REQUIRE(names.size() == 2);
  CHECK(names[0].rfind(leftover, 0) == 0);  // recognisable: target and tag
  CHECK(names[0].size() == leftover.size() + 6);
  const std::string dead = names[0];

  // A leftover is removed once it is 2 s old (its writer locks it at once; this leaves that
  // moment alone): a fresh one stays for now.
  io::save_npy(path, sample<double>({3}));
  CHECK(listing(folder.path()).size() == 2);
  const auto age = [&](const std::string& name) {
    const timespec ten_seconds_ago[2] = {{std::time(nullptr) - 10, 0},
                                         {std::time(nullptr) - 10, 0}};
    REQUIRE(::utimensat(AT_FDCWD, folder.file(name).c_str(), ten_seconds_ago, 0) == 0);
  };
  age(dead);
  // A live writer's temporary file (locked, as a writer in another process or PID namespace
  // holds it), another file's, and a name that is not ours are kept, however old.
  const std::string live = ".w.npy.tapegrad-tmp-abcdef";
  const std::string other = ".v.npy.tapegrad-tmp-abcdef";
  const std::string foreign = ".w.npy.tapegrad-tmp-abc";
  for (const auto& name : {live, other, foreign}) {
    test::write_text(folder.file(name), "x");
    age(name);
  }
  const int held = ::open(folder.file(live).c_str(), O_RDONLY);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX) == 0);
  io::save_npy(path, sample<double>({4}));
  ::close(held);
  names = listing(folder.path());
  std::sort(names.begin(), names.end());
  std::vector<std::string> kept = {live, other, foreign, "w.npy"};
  std::sort(kept.begin(), kept.end());
  CHECK(names == kept);
  CHECK(io::load_npy<double>(path) == sample<double>({4}));
  // Once its writer is gone (the lock released), it goes too.
  io::save_npy(path, sample<double>({5}));
  CHECK(listing(folder.path()).size() == 3);
}

TEST_CASE("another user's file that this user may not write is not replaced by a rename") {
  if (::geteuid() != 0) return;  // needs root to act as another user
  const test::ScratchFolder folder;
  REQUIRE(::chmod(folder.path().c_str(), 0777) == 0);
  const std::string path = folder.file("root.npy");
  io::save_npy(path, sample<double>({2}));  // root's, mode 0644 under the usual umask
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 3;
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        io::save_npy(path, sample<double>({7}));
        code = 1;  // replaced: wrong
      } catch (const io::IoError& e) {
        code = std::string(e.what()).find("not writable by this user") != std::string::npos ? 0 : 2;
      }
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(io::load_npy<double>(path) == sample<double>({2}));
}

TEST_CASE("a read-only file is not replaced, even by root, nor is a fifo") {
  const test::ScratchFolder folder;
  const std::string path = folder.file("w.npy");
  io::save_npy(path, sample<double>({2}));
  REQUIRE(::chmod(path.c_str(), 0444) == 0);
  CHECK_THROWS_WITH_AS(
      io::save_npy(path, sample<double>({5})),
      doctest::Contains((path + ": the file is read-only (mode 0444); not replaced").c_str()),
      IoError);
  CHECK(io::load_npy<double>(path) == sample<double>({2}));
  CHECK(listing(folder.path()) == std::vector<std::string>{"w.npy"});
  // Through a link, the target's mode decides.
  REQUIRE(::symlink("w.npy", folder.file("link").c_str()) == 0);
  CHECK_THROWS_WITH_AS(io::save_npy(folder.file("link"), sample<double>({5})),
                       doctest::Contains("is read-only"), IoError);
  // Nor is anything but a regular file: renaming over a fifo or a device would remove it.
  REQUIRE(::mkfifo(folder.file("fifo").c_str(), 0644) == 0);
  CHECK_THROWS_WITH_AS(io::save_npy(folder.file("fifo"), sample<double>({5})),
                       doctest::Contains("fifo: not a regular file"), IoError);
  struct stat info {};
  REQUIRE(::lstat(folder.file("fifo").c_str(), &info) == 0);
  CHECK(S_ISFIFO(info.st_mode));
  // Write permission for the owner is enough (group and others do not matter).
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  io::save_npy(path, sample<double>({5}));
  CHECK(io::load_npy<double>(path) == sample<double>({5}));
}

TEST_CASE("CSV: a UTF-8 byte order mark is skipped, and an overflowing number is out of range") {
  const test::ScratchFolder folder;
  test::write_text(folder.file("bom.csv"),
                   "\xEF\xBB\xBF"
                   "a,b\n1,2\n");
  const auto table = io::read_csv(folder.file("bom.csv"), true);
  CHECK(table.header == std::vector<std::string>{"a", "b"});
  CHECK(table.values == xt::xarray<double>{{1, 2}});
  test::write_text(folder.file("bom_values.csv"),
                   "\xEF\xBB\xBF"
                   "1,2\n");
  CHECK(io::read_csv(folder.file("bom_values.csv")).values == xt::xarray<double>{{1, 2}});
  // Only at the start of the file: elsewhere it is a character of the cell, shown escaped.
  test::write_text(folder.file("bom_inside.csv"),
                   "1,2\n\xEF\xBB\xBF"
                   "3,4\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("bom_inside.csv")),
                       doctest::Contains("bom_inside.csv:2:1: '\\xEF\\xBB\\xBF3' is not a number"),
                       IoError);

  test::write_text(folder.file("big.csv"), "1,1e999\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("big.csv")),
                       doctest::Contains("big.csv:1:2: '1e999' is out of range for a double"),
                       IoError);
  test::write_text(folder.file("small.csv"), "-1e999\n");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("small.csv")),
                       doctest::Contains("'-1e999' is out of range for a double"), IoError);
  test::write_text(folder.file("tiny.csv"), "1e-999\n");  // underflow rounds to 0, as NumPy does
  const auto tiny = io::read_csv(folder.file("tiny.csv")).values;
  CHECK(tiny.shape() == Shape{1, 1});
  CHECK(tiny(0, 0) == 0.0);
}

TEST_CASE("NUL, CR and other control bytes in names are escaped in io messages") {
  const test::ScratchFolder folder;
  // A cell holding NUL: the message goes on past it.
  test::write_text(folder.file("nul.csv"), std::string("1,a\0b\n", 6));
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("nul.csv")),
                       doctest::Contains("nul.csv:1:2: 'a\\0b' is not a number"), IoError);
  // A file name holding CR, an escape byte and a tab.
  const std::string odd = folder.file("odd\r\x1b\t.csv");
  test::write_text(odd, "x\n");
  CHECK_THROWS_WITH_AS(io::read_csv(odd),
                       doctest::Contains("/odd\\r\\x1B\\t.csv:1:1: 'x' is not a number"), IoError);
  // A file name holding NUL would reach the system cut short (another file): refused.
  const std::string cut = folder.file("w.npy") + std::string("\0.bak", 5);
  CHECK_THROWS_WITH_AS(io::save_npy(cut, sample<double>({1})),
                       doctest::Contains("w.npy\\0.bak: the file name holds a NUL byte"), IoError);
  CHECK(listing(folder.path()).size() == 2);  // w.npy was not written
  CHECK_THROWS_WITH_AS(io::read_npy(cut),
                       doctest::Contains("w.npy\\0.bak: the file name holds a NUL byte"), IoError);
  CHECK_THROWS_WITH_AS(io::read_idx<float>(cut), doctest::Contains("holds a NUL byte"), IoError);
  CHECK_THROWS_WITH_AS(io::read_csv(cut), doctest::Contains("holds a NUL byte"), IoError);
  // Names that come from the caller or from an archive.
  CHECK_THROWS_WITH_AS(io::write_csv(folder.file("h.csv"), xt::xarray<double>{1.0}, {"a\rb"}),
                       doctest::Contains("the header name 'a\\rb' would not read back"),
                       ValueError);
  const auto one = io::NpyArray::from(sample<double>({1}));
  CHECK_THROWS_WITH_AS(
      io::write_npz(folder.file("n.npz"),
                    {{std::string("a\0b", 3), one}, {std::string("a\0b", 3), one}}),
      doctest::Contains("the name 'a\\0b' is empty, holds a NUL byte or is repeated"), ValueError);
  CHECK_THROWS_AS(io::write_npz(folder.file("n.npz"), {{std::string("a\0b", 3), one}}), ValueError);
  REQUIRE(std::system(("cd '" + folder.path() +
                       "' && " TAPEGRAD_PYTHON
                       " -c \"import zipfile; z = zipfile.ZipFile('cr.npz', 'w'); "
                       "z.writestr('a\\rb.txt', 'hi'); z.close()\"")
                          .c_str()) == 0);
  CHECK_THROWS_WITH_AS(io::read_npz(folder.file("cr.npz")),
                       doctest::Contains("cr.npz: member 'a\\rb.txt' is not a .npy file"), IoError);
}

namespace {

// Every reader, each a call on `path` that should refuse it (fashion_mnist: a folder whose
// four files are `path`'s kind).
std::vector<std::pair<std::string, std::function<void(const std::string&)>>> every_reader() {
  static nn::Linear<double> model(2, 1);
  static io::Checkpoint<double> checkpoint(model);
  return {
      {"read_npy", [](const std::string& p) { io::read_npy(p); }},
      {"load_npy", [](const std::string& p) { io::load_npy<double>(p); }},
      {"read_npz", [](const std::string& p) { io::read_npz(p); }},
      {"read_csv", [](const std::string& p) { io::read_csv(p, true); }},
      {"read_idx", [](const std::string& p) { io::read_idx<float>(p); }},
      {"load_state", [](const std::string& p) { io::load_state(model, p); }},
      {"load_torch_state", [](const std::string& p) { io::load_torch_state(model, p); }},
      {"Checkpoint::load", [](const std::string& p) { checkpoint.load(p); }},
  };
}

// Opens `fifo` for writing and closes it again while a reader is blocked opening it, so that a
// reader which does block gets end of file (and a wrong message) instead of hanging the suite.
class FifoRelease {
 public:
  explicit FifoRelease(std::string fifo)
      : fifo_(std::move(fifo)), thread_([this] {
          while (!done_) {
            const int fd = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
            if (fd >= 0) ::close(fd);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}
  ~FifoRelease() {
    done_ = true;
    thread_.join();
  }
  FifoRelease(const FifoRelease&) = delete;
  FifoRelease& operator=(const FifoRelease&) = delete;

 private:
  std::string fifo_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("every reader refuses a FIFO before reading, naming the path and what it is") {
  // Before, opening a FIFO blocked until a writer came: for ever.
  const test::ScratchFolder folder;
  const std::string fifo = folder.file("data.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  const FifoRelease release(fifo);
  for (const auto& [reader, read] : every_reader()) {
    INFO(reader);
    CHECK_THROWS_WITH_AS(read(fifo),
                         (fifo + ": not a regular file but a FIFO (named pipe); only regular "
                                 "files are read (nothing was read)")
                             .c_str(),
                         IoError);
  }
  // Fashion-MNIST's files found as FIFOs are refused the same way, not reported missing.
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    REQUIRE(::mkfifo(folder.file(name).c_str(), 0644) == 0);
  }
  const FifoRelease release_images(folder.file("train-images-idx3-ubyte"));
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist<float>(folder.path()),
                       (folder.file("train-images-idx3-ubyte") +
                        ": not a regular file but a FIFO (named pipe); only regular files are "
                        "read (nothing was read)")
                           .c_str(),
                       IoError);
}

TEST_CASE("every reader refuses a device and a folder before reading") {
  // Before, /dev/zero was read until memory ran out (bad_alloc), and a folder gave "read
  // failed: Is a directory" or, for some readers, parse errors.
  const test::ScratchFolder folder;
  for (const auto& [reader, read] : every_reader()) {
    INFO(reader);
    CHECK_THROWS_WITH_AS(read("/dev/zero"),
                         "/dev/zero: not a regular file but a character device; only regular "
                         "files are read (nothing was read)",
                         IoError);
    CHECK_THROWS_WITH_AS(
        read(folder.path()),
        (folder.path() + ": not a regular file but a folder; only regular files are read "
                         "(nothing was read)")
            .c_str(),
        IoError);
  }
  // A link to a regular file is read as the file.
  io::save_npy(folder.file("a.npy"), sample<double>({3}));
  REQUIRE(::symlink("a.npy", folder.file("link.npy").c_str()) == 0);
  CHECK(io::load_npy<double>(folder.file("link.npy")) == sample<double>({3}));
}

TEST_CASE("CSV lines may end in CR alone, CR LF or LF") {
  // Before, a CR-only file read with a header gave the header one long line and 0 rows.
  const test::ScratchFolder folder;
  test::write_text(folder.file("cr.csv"), "a,b\r1,2\r3,4\r");
  const auto table = io::read_csv(folder.file("cr.csv"), true);
  CHECK(table.header == std::vector<std::string>{"a", "b"});
  CHECK(table.values == xt::xarray<double>{{1, 2}, {3, 4}});
  test::write_text(folder.file("mixed.csv"), "1,2\r\n3,4\r5,6\n\r\n7,8");
  CHECK(io::read_csv(folder.file("mixed.csv")).values ==
        xt::xarray<double>{{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  // Line numbers count CR-only lines too.
  test::write_text(folder.file("bad.csv"), "a,b\r1,2\r3,x\r");
  CHECK_THROWS_WITH_AS(io::read_csv(folder.file("bad.csv"), true),
                       doctest::Contains("bad.csv:3:2: 'x' is not a number"), IoError);
}

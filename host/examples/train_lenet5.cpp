// The C++ API example of docs/user-guide.md: train LeNet-5 with BDWP 2:8 on Fashion-MNIST, then
// rebuild the model from its checkpoint and evaluate it.
//
// Usage: train_lenet5 [--model FILE] [--backend NAME] [--epochs N] [--data fashion-mnist|synthetic]
//                     [--data-dir DIR] [--train-limit N] [--test-limit N] [--stop-after-steps N]
//                     [--out DIR]
// The flags mean what they mean to `sat train`. --model defaults to lenet5.json in SAT_MODELS_DIR,
// which the examples' CMakeLists.txt sets from the package; `--data synthetic --train-limit 512
// --stop-after-steps 3` trains for seconds.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <sat/backend.hpp>
#include <sat/checkpoint.hpp>
#include <sat/data.hpp>
#include <sat/error.hpp>
#include <sat/model.hpp>
#include <sat/train.hpp>

namespace {

#ifdef SAT_MODELS_DIR
const char* const kDefaultModel = SAT_MODELS_DIR "/lenet5.json";
#else
const char* const kDefaultModel = nullptr;   // built without the package's models: --model is needed
#endif

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "train_lenet5: %s\nusage: train_lenet5 [--model FILE] [--backend NAME] [--epochs N] "
               "[--data fashion-mnist|synthetic] [--data-dir DIR] [--train-limit N] [--test-limit N] "
               "[--stop-after-steps N] [--out DIR]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model_path = kDefaultModel ? kDefaultModel : "";
  std::string backend_name = "cpu", data = "fashion-mnist", data_dir, out_dir = "runs/api-example";
  int epochs = 0;
  long long train_limit = 0, test_limit = 0, stop_after_steps = 0;
  for (int i = 1; i < argc; ++i) {
    const char* flag = argv[i];
    if (i + 1 >= argc) usage((std::string("missing value after ") + flag).c_str());
    const char* value = argv[++i];
    if (!std::strcmp(flag, "--model")) model_path = value;
    else if (!std::strcmp(flag, "--backend")) backend_name = value;
    else if (!std::strcmp(flag, "--epochs")) epochs = std::atoi(value);
    else if (!std::strcmp(flag, "--data")) data = value;
    else if (!std::strcmp(flag, "--data-dir")) data_dir = value;
    else if (!std::strcmp(flag, "--train-limit")) train_limit = std::atoll(value);
    else if (!std::strcmp(flag, "--test-limit")) test_limit = std::atoll(value);
    else if (!std::strcmp(flag, "--stop-after-steps")) stop_after_steps = std::atoll(value);
    else if (!std::strcmp(flag, "--out")) out_dir = value;
    else usage((std::string("unknown option ") + flag).c_str());
  }
  if (model_path.empty()) usage("no --model given and no SAT_MODELS_DIR compiled in");

  sat::Model model = sat::Model::load(model_path, sat::NM{2, 8});
  auto backend = sat::open_backend(backend_name);
  std::unique_ptr<sat::BatchSource> train_src, test_src;
  if (data == "synthetic") {
    train_src = sat::make_synthetic_source(model.input, model.classes, 60000, 1);
    test_src = sat::make_synthetic_source(model.input, model.classes, 10000, 2);
  } else if (data == "fashion-mnist") {
    auto train = std::make_shared<const sat::Dataset>(sat::load_fashion_mnist(true, data_dir));
    auto test = std::make_shared<const sat::Dataset>(sat::load_fashion_mnist(false, data_dir));
    train_src = sat::make_image_source(train, model.input);
    test_src = sat::make_image_source(test, model.input);
  } else {
    usage("--data must be fashion-mnist or synthetic");
  }
  if (train_limit > 0) train_src = sat::make_prefix_source(std::move(train_src), train_limit);
  if (test_limit > 0) test_src = sat::make_prefix_source(std::move(test_src), test_limit);

  sat::TrainState state;
  state.method = sat::Method::bdwp;
  state.nm = model.nm;
  state.recipe = model.recipe;
  if (epochs > 0) state.recipe.epochs = epochs;
  sat::TrainOptions options;
  options.out_dir = out_dir;
  options.stop_after_steps = stop_after_steps;
  double last_loss = 0;
  options.on_step = [&](const sat::StepReport& r) {
    last_loss = r.loss;
    return true;
  };
  state = sat::train(*backend, model, *train_src, test_src.get(), state, options);
  std::printf("trained %lld steps on %s, last loss %.4f\n", static_cast<long long>(state.global_step),
              backend_name.c_str(), last_loss);

  sat::TrainState loaded;
  sat::Model again = sat::model_from_checkpoint(out_dir + "/checkpoint.sat", &loaded);
  const sat::EvalResult r = sat::evaluate(*backend, again, *test_src, loaded.method, 256);
  std::printf("reloaded checkpoint: test accuracy %.2f%%, loss %.4f\n", 100 * r.accuracy, r.loss);
  return 0;
} catch (const sat::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}

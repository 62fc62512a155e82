// The C++ API example of docs/user-guide.md: train LeNet-5 with BDWP 2:8 on Fashion-MNIST, then
// rebuild the model from its checkpoint and evaluate it. Built as `build/train_lenet5`.
// Usage: train_lenet5 [epochs]
#include <cstdio>
#include <cstdlib>

#include <sat/backend.hpp>
#include <sat/error.hpp>
#include <sat/checkpoint.hpp>
#include <sat/data.hpp>
#include <sat/model.hpp>
#include <sat/train.hpp>

int main(int argc, char** argv) try {
  sat::Model model = sat::Model::load(SAT_SOURCE_DIR "/models/lenet5.json", sat::NM{2, 8});
  auto backend = sat::open_backend("cpu");
  auto train = std::make_shared<const sat::Dataset>(sat::load_fashion_mnist(true));
  auto test = std::make_shared<const sat::Dataset>(sat::load_fashion_mnist(false));
  auto train_src = sat::make_image_source(train, model.input);
  auto test_src = sat::make_image_source(test, model.input);

  sat::TrainState state;
  state.method = sat::Method::bdwp;
  state.nm = model.nm;
  state.recipe = model.recipe;
  if (argc > 1) state.recipe.epochs = std::atoi(argv[1]);
  sat::TrainOptions options;
  options.out_dir = "runs/api-example";
  state = sat::train(*backend, model, *train_src, test_src.get(), state, options);

  sat::TrainState loaded;
  sat::Model again = sat::model_from_checkpoint("runs/api-example/checkpoint.sat", &loaded);
  const sat::EvalResult r = sat::evaluate(*backend, again, *test_src, loaded.method, 256);
  std::printf("reloaded checkpoint: test accuracy %.2f%%\n", 100 * r.accuracy);
  return 0;
} catch (const sat::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}

// Bench-only: drives libarcadia_ale.so (our shim) from a plain C++ loop, doing what bench/ale_bench.ts does through
// Deno FFI, so the two measure the same native work. Compiled by bench/ale_bench.ts at bench time.
//
// usage: ale_bench_loop <rom.bin> <frameskip> <frames> <seed>   → prints "<frames> <seconds>"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" {
const char* arc_ale_last_error(void);
void* arc_ale_create(void);
void arc_ale_destroy(void* handle);
int32_t arc_ale_set_int(void* handle, const char* key, int32_t value);
int32_t arc_ale_set_float(void* handle, const char* key, float value);
int32_t arc_ale_load_rom(void* handle, const char* path);
int32_t arc_ale_reset_game(void* handle);
int32_t arc_ale_minimal_actions(void* handle, int32_t* out, int32_t cap);
int32_t arc_ale_step(void* handle, int32_t action, float paddle_strength, int32_t frameskip, int32_t kind,
                     uint8_t* obs, int32_t obs_cap, uint8_t* prev, int32_t* out);
}

static int die(const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, arc_ale_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <rom.bin> <frameskip> <frames> <seed>\n", argv[0]);
    return 2;
  }
  const int skip = std::atoi(argv[2]);
  const long frames = std::atol(argv[3]);
  const int seed = std::atoi(argv[4]);
  void* h = arc_ale_create();
  if (!h) return die("create");
  if (arc_ale_set_float(h, "repeat_action_probability", 0.25f) < 0) return die("setFloat");
  if (arc_ale_set_int(h, "random_seed", seed) < 0) return die("setInt");
  if (arc_ale_load_rom(h, argv[1]) < 0) return die("loadROM");
  int32_t actions[32];
  const int n = arc_ale_minimal_actions(h, actions, 32);
  if (n <= 0) return die("minimal actions");
  std::vector<uint8_t> screen(210 * 160);
  int32_t status[6];
  uint32_t rng = static_cast<uint32_t>(seed) * 2654435761u + 1;
  if (arc_ale_reset_game(h) < 0) return die("reset");
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  while (done < frames) {
    rng = rng * 1664525u + 1013904223u;  // random actions, as the TypeScript side draws them
    const int32_t a = actions[(rng >> 16) % static_cast<uint32_t>(n)];
    if (arc_ale_step(h, a, 1.0f, skip, 2, screen.data(), static_cast<int32_t>(screen.size()), nullptr, status) < 0) {
      return die("step");
    }
    done += skip;
    if (status[1] || status[2]) arc_ale_reset_game(h);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%ld %.6f\n", done, seconds);
  arc_ale_destroy(h);
  return 0;
}

// The SIMT emulation's runtime: fibers, the per-block scheduler, launch validation and error state.
#include "sim.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emf {
thread_local unsigned char __attribute__((aligned(128))) emf_smem[emf_sim::kOptinSmemLimit];
}  // namespace emf

namespace emf_sim {
namespace {

struct KernelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr size_t kStackSize = 256 * 1024;

thread_local KernelBody* tls_body = nullptr;
thread_local cudaError_t tls_error = cudaSuccess;
thread_local std::string tls_error_message;
// What the last cudaGetLastError() returned, so that cudaGetErrorString() of that code can give the
// detailed message (the real runtime only has fixed strings; the emulation knows more).
thread_local cudaError_t tls_reported = cudaSuccess;
thread_local std::string tls_reported_message;

// How threads are interleaved (see set_schedule): index = 3 * run_ahead + order.
enum Order : int { kForward = 0, kReverse = 1, kRandom = 2 };
const char* const kScheduleNames[] = {"forward", "reverse", "random",
                                      "runahead-forward", "runahead-reverse", "runahead-random"};
constexpr int kSchedules = 6;

int schedule_index(const std::string& name) {
  for (int i = 0; i < kSchedules; ++i)
    if (name == kScheduleNames[i]) return i;
  return -1;
}
int schedule_from_env() {
  const char* s = std::getenv("EMF_SIM_SCHEDULE");
  const int i = s ? schedule_index(s) : -1;
  return i < 0 ? 0 : i;
}
std::atomic<int> g_schedule{schedule_from_env()};
std::atomic<uint64_t> g_schedule_seed{0};
thread_local std::vector<int> tls_order, tls_warp_order, tls_lane_order;
thread_local std::mt19937_64 tls_rng;

// 0 .. count-1 in the schedule's order (a fresh shuffle for kRandom).
void arrange(std::vector<int>& v, int count, Order order) {
  v.resize(count);
  for (int i = 0; i < count; ++i) v[i] = order == kReverse ? count - 1 - i : i;
  if (order == kRandom) std::shuffle(v.begin(), v.end(), tls_rng);
}

std::mutex g_attr_mutex;
std::unordered_map<const void*, size_t> g_max_dynamic_smem;

// ------------------------------------------------------------------ context switching
#if defined(__x86_64__)
extern "C" void emf_sim_switch(void** save_sp, void* new_sp);
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the
// stack pointer in *save_sp, and resumes the context whose stack pointer is new_sp.
asm(R"(
  .text
  .p2align 4
  .globl emf_sim_switch
  .hidden emf_sim_switch
  .type emf_sim_switch, @function
emf_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emf_sim_switch, .-emf_sim_switch
)");

thread_local void* tls_scheduler_sp = nullptr;

void fiber_main();

void prepare_fiber(Fiber& f) {
  // Top of stack, 16-byte aligned, then a frame that emf_sim_switch "returns" into fiber_main from.
  uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + f.stack_size) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top - 72);  // = 8 (mod 16): as if fiber_main were called
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  std::memset(sp, 0, 72);
  std::memcpy(reinterpret_cast<char*>(sp), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpcw, 2);
  sp[7] = reinterpret_cast<uint64_t>(&fiber_main);  // return address popped by `ret`
  sp[8] = 0;                                          // fiber_main's own (never used) return address
  f.sp = sp;
}
inline void switch_to_fiber(Fiber& f) { emf_sim_switch(&tls_scheduler_sp, f.sp); }
inline void switch_to_scheduler(Fiber& f) { emf_sim_switch(&f.sp, tls_scheduler_sp); }
#else
thread_local ucontext_t tls_scheduler_ctx;
thread_local std::vector<ucontext_t> tls_contexts;
void fiber_main();
void prepare_fiber(Fiber& f) {
  ucontext_t& ctx = tls_contexts[f.linear];
  getcontext(&ctx);
  ctx.uc_stack.ss_sp = f.stack;
  ctx.uc_stack.ss_size = f.stack_size;
  ctx.uc_link = nullptr;
  makecontext(&ctx, &fiber_main, 0);
  f.sp = &ctx;
}
inline void switch_to_fiber(Fiber& f) { swapcontext(&tls_scheduler_ctx, static_cast<ucontext_t*>(f.sp)); }
inline void switch_to_scheduler(Fiber& f) { swapcontext(static_cast<ucontext_t*>(f.sp), &tls_scheduler_ctx); }
#endif

// Stacks are kept per OS thread and reused by every block and launch; each has a guard page below it.
struct StackPool {
  std::vector<void*> stacks;
  ~StackPool() {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (void* s : stacks) munmap(static_cast<char*>(s) - page, kStackSize + page);
  }
  void* get(size_t i) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    while (stacks.size() <= i) {
      void* m = mmap(nullptr, kStackSize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED) throw std::runtime_error("cuda_sim: cannot map a fiber stack");
      mprotect(m, page, PROT_NONE);
      stacks.push_back(static_cast<char*>(m) + page);
    }
    return stacks[i];
  }
};
thread_local StackPool tls_stacks;
thread_local std::vector<Fiber> tls_fibers;

void fiber_exit(Fiber& f) {
  Block& b = block();
  f.state = State::Done;
  --b.live;
  // A lane that exits while warp-mates wait for it in a collective would hang the hardware.
  Fiber* lanes = b.fibers + f.warp * kWarpSize;
  const int n = std::min(kWarpSize, b.nthreads - f.warp * kWarpSize);
  for (int l = 0; l < n && b.error.empty(); ++l)
    if (lanes[l].state == State::AtWarpCollective && (lanes[l].mask & (1u << f.lane)))
      b.error = "lane " + std::to_string(f.lane) + " of warp " + std::to_string(f.warp) + " exited while lane " +
                std::to_string(l) + " waits for it in " + lanes[l].what;
  if (b.at_barrier > 0 && b.at_barrier == b.live) release_block_barrier();
}

void fiber_main() {
  Fiber& f = self();
  try {
    tls_body->run();
  } catch (const std::exception& e) {
    if (block().error.empty()) block().error = e.what();
  } catch (...) {
    if (block().error.empty()) block().error = "unknown exception in a kernel";
  }
  fiber_exit(f);
  switch_to_scheduler(f);
  std::abort();  // a finished fiber is never resumed
}

std::string describe(const Fiber& f) {
  std::string s = "thread (" + std::to_string(f.tid.x) + "," + std::to_string(f.tid.y) + "," + std::to_string(f.tid.z) + ")";
  switch (f.state) {
    case State::Runnable: return s + " runnable";
    case State::Done: return s + " exited";
    case State::AtBlockBarrier: return s + " in __syncthreads";
    case State::AtWarpCollective: {
      char mask[16];
      std::snprintf(mask, sizeof mask, "%08x", f.mask);
      return s + " in " + f.what + " (mask 0x" + mask + ")";
    }
  }
  return s;
}

// Runs one block to completion; returns an error message, empty on success.
std::string run_block(uint3 block_idx, dim3 grid, dim3 bdim, size_t dynamic_smem) {
  Block& b = block();
  const int n = static_cast<int>(bdim.x * bdim.y * bdim.z);
  if (static_cast<int>(tls_fibers.size()) < n) tls_fibers.resize(n);
#if !defined(__x86_64__)
  if (static_cast<int>(tls_contexts.size()) < n) tls_contexts.resize(n);
#endif
  b.block_idx = block_idx;
  b.block_dim = bdim;
  b.grid_dim = grid;
  b.fibers = tls_fibers.data();
  b.nthreads = n;
  b.live = n;
  b.at_barrier = 0;
  b.npoisoned = 0;
  b.error.clear();
  // The whole buffer is poisoned (0xFF bytes: NaN as floats), so reads of unwritten shared memory and
  // reads past the launch's dynamic size show up; writes past it are caught after the block.
  std::memset(dynamic_smem_base(), 0xff, kOptinSmemLimit);
  for (int i = 0; i < n; ++i) {
    Fiber& f = tls_fibers[i];
    f = Fiber{};
    f.stack = tls_stacks.get(i);
    f.stack_size = kStackSize;
    f.linear = i;
    f.tid = uint3{static_cast<unsigned>(i) % bdim.x, (static_cast<unsigned>(i) / bdim.x) % bdim.y,
                  static_cast<unsigned>(i) / (bdim.x * bdim.y)};
    f.lane = i % kWarpSize;
    f.warp = i / kWarpSize;
    f.state = State::Runnable;
    prepare_fiber(f);
  }
  const int schedule = g_schedule.load();
  const Order order = static_cast<Order>(schedule % 3);
  const bool run_ahead = schedule >= 3;
  std::string err;
  // Resumes thread i if it is runnable; returns whether it ran (err is set if it failed).
  auto resume = [&](int i) {
    Fiber& f = tls_fibers[i];
    if (f.state != State::Runnable) return false;
    b.current = &f;
    switch_to_fiber(f);
    b.current = nullptr;
    if (!b.error.empty())
      err = "thread (" + std::to_string(f.tid.x) + "," + std::to_string(f.tid.y) + "," + std::to_string(f.tid.z) +
            "): " + b.error;
    return true;
  };
  while (b.live > 0) {
    bool progressed = false;
    if (!run_ahead) {  // one pass: every runnable thread once
      arrange(tls_order, n, order);
      for (int i : tls_order) {
        if (resume(i)) progressed = true;
        if (!err.empty()) return err;
      }
    } else {  // one round: each warp in turn runs until its lanes wait at a block barrier or exit
      const int warps = (n + kWarpSize - 1) / kWarpSize;
      arrange(tls_warp_order, warps, order);
      const unsigned generation = b.barrier_generation;
      for (int w = 0; w < warps && b.barrier_generation == generation; ++w) {
        const int first = tls_warp_order[w] * kWarpSize, lanes = std::min(kWarpSize, n - first);
        for (bool ran = true; ran && b.barrier_generation == generation;) {
          ran = false;
          arrange(tls_lane_order, lanes, order);
          for (int l = 0; l < lanes && b.barrier_generation == generation; ++l) {
            if (resume(first + tls_lane_order[l])) ran = progressed = true;
            if (!err.empty()) return err;
          }
        }
      }
      // A barrier that opened ends the round early: the next phase starts again from the order's first warp.
    }
    if (!progressed) {
      std::string msg = "deadlock: no thread can proceed;";
      int shown = 0;
      for (int i = 0; i < n && shown < 8; ++i)
        if (tls_fibers[i].state != State::Done) {
          msg += (shown ? "; " : " ") + describe(tls_fibers[i]);
          ++shown;
        }
      return msg;
    }
  }
  const unsigned char* smem = dynamic_smem_base();
  for (size_t i = dynamic_smem; i < kOptinSmemLimit; ++i)
    if (smem[i] != 0xff)
      return "wrote shared memory at byte " + std::to_string(i) + ", past the " + std::to_string(dynamic_smem) +
             " bytes of dynamic shared memory the launch requested";
  return {};
}

}  // namespace

void set_schedule(const std::string& order, uint64_t seed) {
  const int i = schedule_index(order);
  if (i < 0) {
    std::string names;
    for (const char* name : kScheduleNames) names += std::string(names.empty() ? "'" : ", '") + name + "'";
    throw std::invalid_argument("schedule must be one of " + names + ", got '" + order + "'");
  }
  g_schedule = i;
  g_schedule_seed = seed;
}

std::string schedule() { return kScheduleNames[g_schedule.load()]; }

void yield_to_scheduler() { switch_to_scheduler(self()); }

void fail(const std::string& message) { throw KernelError(message); }

unsigned char* dynamic_smem_base() { return emf::emf_smem; }

void set_max_dynamic_smem(const void* kernel, int bytes) {
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  g_max_dynamic_smem[kernel] = static_cast<size_t>(bytes);
}

size_t max_dynamic_smem(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  auto it = g_max_dynamic_smem.find(kernel);
  return it == g_max_dynamic_smem.end() ? kDefaultSmemLimit : std::max(it->second, kDefaultSmemLimit);
}

void set_last_error(cudaError_t code, const std::string& message) {
  tls_error = code;
  tls_error_message = message;
}

cudaError_t get_last_error(bool reset) {
  const cudaError_t e = tls_error;
  tls_reported = e;
  tls_reported_message = e == cudaSuccess ? std::string() : tls_error_message;
  if (reset) {
    tls_error = cudaSuccess;
    tls_error_message.clear();
  }
  return e;
}

const char* error_string(cudaError_t code) {
  if (code == cudaSuccess) return "no error";
  if (code == tls_reported && !tls_reported_message.empty()) return tls_reported_message.c_str();
  switch (code) {
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
  }
}

void run_grid(const void* kernel_id, dim3 grid, dim3 bdim, size_t dynamic_smem, KernelBody& body) {
  if (block().current != nullptr) {
    set_last_error(cudaErrorLaunchFailure, "cuda_sim: kernels cannot launch kernels");
    return;
  }
  const uint64_t threads = uint64_t(bdim.x) * bdim.y * bdim.z;
  if (threads == 0 || threads > 1024 || bdim.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    set_last_error(cudaErrorInvalidConfiguration,
                   "invalid configuration argument: grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) +
                       "," + std::to_string(grid.z) + "), block (" + std::to_string(bdim.x) + "," +
                       std::to_string(bdim.y) + "," + std::to_string(bdim.z) + ")");
    return;
  }
  if (dynamic_smem > max_dynamic_smem(kernel_id)) {
    set_last_error(cudaErrorInvalidValue, "invalid argument: " + std::to_string(dynamic_smem) +
                                              " bytes of dynamic shared memory exceed the kernel's limit of " +
                                              std::to_string(max_dynamic_smem(kernel_id)));
    return;
  }
  KernelBody* saved = tls_body;
  tls_body = &body;
  tls_rng.seed(g_schedule_seed.load());  // "random" is reproducible: the same seed, the same interleaving
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::string err = run_block(uint3{x, y, z}, grid, bdim, dynamic_smem);
        if (!err.empty()) {
          tls_body = saved;
          set_last_error(cudaErrorLaunchFailure, "block (" + std::to_string(x) + "," + std::to_string(y) + "," +
                                                     std::to_string(z) + ") " + err);
          return;
        }
      }
  tls_body = saved;
}

}  // namespace emf_sim

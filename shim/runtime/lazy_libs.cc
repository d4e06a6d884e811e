// Trampolines for the libbpf and libnuma functions rings/ uses (see
// shim/runtime/lazy_libs.h). Each resolves its real function on first call; the
// version script keeps them local, so a program's own libbpf is untouched.
#include "shim/runtime/lazy_libs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <numa.h>

#include <cstdlib>
#include <mutex>

namespace xdpload::shim {
namespace {

void* g_bpf = nullptr;
void* g_numa = nullptr;
std::once_flag g_once;
std::string g_error;

void load() {
  // RTLD_LOCAL: the symbols serve our trampolines only. XL_TEST_LIBBPF: a
  // test seam naming another file, to show a missing library.
  const char* bpf = getenv("XL_TEST_LIBBPF");
  g_bpf = dlopen(bpf ? bpf : "libbpf.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!g_bpf) {
    g_error = dlerror();
    return;
  }
  g_numa = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!g_numa) g_error = dlerror();
}

// The real function; the libraries are loaded by then (load_lazy_libs()
// succeeded before the stack started), so a miss is a broken install.
void* real(void* lib, const char* name) {
  void* f = lib ? dlsym(lib, name) : nullptr;
  if (!f) abort();
  return f;
}

}  // namespace

bool load_lazy_libs(std::string* why) {
  std::call_once(g_once, load);
  if (g_bpf && g_numa) return true;
  *why = g_error;
  return false;
}

}  // namespace xdpload::shim

using xdpload::shim::real;

#define LAZY(lib, ret, name, params, args)                                \
  extern "C" ret name params {                                            \
    static auto real_fn = reinterpret_cast<ret(*) params>(real(lib, #name)); \
    return real_fn args;                                                  \
  }
#define BPF xdpload::shim::g_bpf
#define NUMA xdpload::shim::g_numa

LAZY(BPF, int, bpf_link_create,
     (int prog_fd, int target_fd, enum bpf_attach_type type, const struct bpf_link_create_opts* o),
     (prog_fd, target_fd, type, o))
LAZY(BPF, int, bpf_map_lookup_elem, (int fd, const void* key, void* value), (fd, key, value))
LAZY(BPF, int, bpf_map_delete_elem, (int fd, const void* key), (fd, key))
LAZY(BPF, int, bpf_map_update_elem, (int fd, const void* key, const void* value, __u64 flags),
     (fd, key, value, flags))
LAZY(BPF, int, bpf_obj_get_info_by_fd, (int fd, void* info, __u32* len), (fd, info, len))
LAZY(BPF, void, bpf_object__close, (struct bpf_object * o), (o))
LAZY(BPF, int, bpf_object__find_map_fd_by_name, (const struct bpf_object* o, const char* n), (o, n))
LAZY(BPF, struct bpf_program*, bpf_object__find_program_by_name,
     (const struct bpf_object* o, const char* n), (o, n))
LAZY(BPF, int, bpf_object__load, (struct bpf_object * o), (o))
LAZY(BPF, struct bpf_map*, bpf_object__find_map_by_name, (const struct bpf_object* o, const char* n),
     (o, n))
LAZY(BPF, int, bpf_map__set_initial_value, (struct bpf_map * m, const void* d, size_t n), (m, d, n))
LAZY(BPF, void, bpf_program__set_ifindex, (struct bpf_program * p, __u32 i), (p, i))
LAZY(BPF, __u32, bpf_program__flags, (const struct bpf_program* p), (p))
LAZY(BPF, int, bpf_program__set_flags, (struct bpf_program * p, __u32 f), (p, f))
LAZY(BPF, struct bpf_object*, bpf_object__open_mem,
     (const void* buf, size_t size, const struct bpf_object_open_opts* opts), (buf, size, opts))
LAZY(BPF, int, bpf_prog_get_fd_by_id, (__u32 id), (id))
LAZY(BPF, int, bpf_program__fd, (const struct bpf_program* p), (p))
LAZY(BPF, int, bpf_xdp_query, (int ifindex, int flags, struct bpf_xdp_query_opts* opts),
     (ifindex, flags, opts))
LAZY(BPF, int, libbpf_num_possible_cpus, (void), ())
LAZY(BPF, libbpf_print_fn_t, libbpf_set_print, (libbpf_print_fn_t print), (print))
LAZY(NUMA, int, numa_available, (void), ())
LAZY(NUMA, int, numa_node_of_cpu, (int cpu), (cpu))
LAZY(NUMA, void, numa_tonode_memory, (void* start, size_t size, int node), (start, size, node))

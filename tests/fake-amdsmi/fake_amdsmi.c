/* A fake libamd_smi for node-probe's tests: the functions node-probe calls, with the public ABI of
 * include/amd_smi/amdsmi.h and the behaviour of src/amd_smi/amd_smi.cc (github.com/ROCm/amdsmi, mirror at
 * commit 0ceca28f, Oct 2024); the ABI of every PyPI release is checked by tests/truth/amdsmi_abi.py.
 *
 * ABI per release, chosen at build time:
 *   -DFAKE_V6  ROCm 6.x: amdsmi_version_t {uint32 year, major, minor, release; const char *build}, the
 *              soname major being `year` (amdsmi.h:177-186 AMDSMI_LIB_VERSION_YEAR 24 / _MAJOR 7; the
 *              package version "24.7.0" of CMakeLists.txt:31 gives the soname).
 *   default    ROCm 7.x: {uint32 major, minor, release; const char *build}, `major` 26 = the soname major.
 * As upstream: every call but amdsmi_init/amdsmi_shut_down answers AMDSMI_STATUS_NOT_INIT (32) until
 * amdsmi_init succeeded and after amdsmi_shut_down (amd_smi.cc:81-85 AMDSMI_CHECK_INIT, used by
 * amdsmi_get_lib_version at :1988, the handle calls at :185/:257, bdf :377, bad pages :2175); init and
 * shut-down are idempotent (:131-152).
 * A library unloaded (or a process ending) while still initialised exits 99 with a line on stderr: a
 * reader that skips amdsmi_shut_down on some path fails the test that takes it.
 *
 * Settings: `fake_amdsmi.conf` beside the library's real file (realpath of the loaded name, so a load by
 * /proc/self/fd/N finds it too), one `key value` per line:
 *   version Y.M.m.r | M.m.r       what amdsmi_get_lib_version reports: 4 numbers (-DFAKE_V6), else 3
 *   mode ok|abort|hang|init_fail  abort or hang in amdsmi_init, or return AMDSMI_STATUS_DRM_ERROR (6)
 *   gpu BDF R P F                 a GPU (one socket each) and its bad-page records by status
 *   no_bad_pages 1                amdsmi_get_gpu_bad_page_info answers AMDSMI_STATUS_NOT_SUPPORTED (2)
 *   drm 1                         amdsmi_init dlopen()s "libdrm.so.2" by soname as upstream does
 *                                 (src/amd_smi/amd_smi_drm.cc:91) and fails with DRM_ERROR unless it is
 *                                 the tests' stand-in (its symbol fake_drm_marker): the host's, not the image's
 * Loading it creates `fake_amdsmi.loaded` beside it: a test proves a refused library never ran.
 * Built with -DFAKE_OLD it has no amdsmi_get_gpu_bad_page_info at all (an older library's missing symbol).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GPUS 16
#define AMDSMI_STATUS_SUCCESS 0
#define AMDSMI_STATUS_INVAL 1
#define AMDSMI_STATUS_NOT_SUPPORTED 2
#define AMDSMI_STATUS_DRM_ERROR 6
#define AMDSMI_STATUS_NOT_INIT 32
#define CHECK_INIT()                           \
  do {                                         \
    if (!initialized) return AMDSMI_STATUS_NOT_INIT; \
  } while (0)

static int initialized;

typedef void *amdsmi_processor_handle;
typedef void *amdsmi_socket_handle;

typedef union {
  struct {
    uint64_t function_number : 3;
    uint64_t device_number : 5;
    uint64_t bus_number : 8;
    uint64_t domain_number : 48;
  };
  uint64_t as_uint;
} amdsmi_bdf_t;

#ifdef FAKE_V6
typedef struct {
  uint32_t year;
  uint32_t major;
  uint32_t minor;
  uint32_t release;
  const char *build;
} amdsmi_version_t;
#else
typedef struct {
  uint32_t major;
  uint32_t minor;
  uint32_t release;
  const char *build;
} amdsmi_version_t;
#endif

typedef struct {
  uint64_t page_address;
  uint64_t page_size;
  int status;
} amdsmi_retired_page_record_t;

struct gpu {
  unsigned dom, bus, dev, fn;
  unsigned pages[3];
};

static struct {
  int loaded;
  unsigned year, major, minor, release;
  char mode[16];
  int no_bad_pages;
  int drm;
  int ngpus;
  struct gpu gpus[MAX_GPUS];
} cfg;

static void load(void) {
  if (cfg.loaded) return;
  cfg.loaded = 1;
  strcpy(cfg.mode, "ok");
  Dl_info info;
  if (!dladdr((void *)load, &info) || !info.dli_fname) return;
  char path[4096];
  if (!realpath(info.dli_fname, path)) return;
  char *slash = strrchr(path, '/');
  if (!slash) return;
  snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "fake_amdsmi.conf");
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    struct gpu g = {0};
#ifdef FAKE_V6
    if (sscanf(line, "version %u.%u.%u.%u", &cfg.year, &cfg.major, &cfg.minor, &cfg.release) == 4)
      continue;
#else
    if (sscanf(line, "version %u.%u.%u", &cfg.major, &cfg.minor, &cfg.release) == 3) continue;
#endif
    if (sscanf(line, "mode %15s", cfg.mode) == 1) continue;
    if (sscanf(line, "no_bad_pages %d", &cfg.no_bad_pages) == 1) continue;
    if (sscanf(line, "drm %d", &cfg.drm) == 1) continue;
    if (sscanf(line, "gpu %x:%x:%x.%x %u %u %u", &g.dom, &g.bus, &g.dev, &g.fn, &g.pages[0],
               &g.pages[1], &g.pages[2]) == 7 &&
        cfg.ngpus < MAX_GPUS)
      cfg.gpus[cfg.ngpus++] = g;
  }
  fclose(f);
}

__attribute__((constructor)) static void mark_loaded(void) {
  Dl_info info;
  char path[4096];
  if (!dladdr((void *)mark_loaded, &info) || !info.dli_fname || !realpath(info.dli_fname, path)) return;
  char *slash = strrchr(path, '/');
  if (!slash) return;
  snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "fake_amdsmi.loaded");
  FILE *f = fopen(path, "w");
  if (f) fclose(f);
}

/* Handles are 1-based indexes into cfg.gpus (sockets and processors alike: one GPU per socket). */
static struct gpu *gpu_of(void *h) {
  uintptr_t i = (uintptr_t)h;
  return (i >= 1 && i <= (uintptr_t)cfg.ngpus) ? &cfg.gpus[i - 1] : NULL;
}

int amdsmi_init(uint64_t flags) {
  load();
  if (initialized) return AMDSMI_STATUS_SUCCESS;
  if (flags != (1 << 1)) return AMDSMI_STATUS_INVAL; /* node-probe asks for AMD GPUs only */
  if (!strcmp(cfg.mode, "abort")) abort();
  if (!strcmp(cfg.mode, "hang"))
    for (;;) pause();
  if (!strcmp(cfg.mode, "init_fail")) return AMDSMI_STATUS_DRM_ERROR;
  if (cfg.drm) {
    void *drm = dlopen("libdrm.so.2", RTLD_NOW);
    if (!drm || !dlsym(drm, "fake_drm_marker")) {
      fprintf(stderr, "fake_amdsmi: libdrm.so.2: %s\n", drm ? "not the host's stand-in" : dlerror());
      return AMDSMI_STATUS_DRM_ERROR;
    }
  }
  initialized = 1;
  return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_shut_down(void) {
  initialized = 0;
  return AMDSMI_STATUS_SUCCESS;
}

__attribute__((destructor)) static void still_initialised(void) {
  if (!initialized) return;
  static const char msg[] = "fake_amdsmi: unloaded without amdsmi_shut_down\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(99);
}

int amdsmi_get_lib_version(amdsmi_version_t *v) {
  CHECK_INIT();
  if (!v) return AMDSMI_STATUS_INVAL;
  memset(v, 0, sizeof *v);
#ifdef FAKE_V6
  v->year = cfg.year;
#endif
  v->major = cfg.major;
  v->minor = cfg.minor;
  v->release = cfg.release;
  v->build = "fake";
  return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_socket_handles(uint32_t *n, amdsmi_socket_handle *out) {
  CHECK_INIT();
  if (!n) return 1;
  if (!out) {
    *n = (uint32_t)cfg.ngpus;
    return 0;
  }
  uint32_t k = *n < (uint32_t)cfg.ngpus ? *n : (uint32_t)cfg.ngpus;
  for (uint32_t i = 0; i < k; i++) out[i] = (void *)(uintptr_t)(i + 1);
  *n = k;
  return 0;
}

int amdsmi_get_processor_handles(amdsmi_socket_handle s, uint32_t *n, amdsmi_processor_handle *out) {
  CHECK_INIT();
  if (!n || !gpu_of(s)) return 1;
  if (!out) {
    *n = 1;
    return 0;
  }
  if (*n < 1) return 1;
  out[0] = s;
  *n = 1;
  return 0;
}

int amdsmi_get_gpu_device_bdf(amdsmi_processor_handle h, amdsmi_bdf_t *bdf) {
  CHECK_INIT();
  struct gpu *g = gpu_of(h);
  if (!g || !bdf) return 1;
  bdf->as_uint = 0;
  bdf->domain_number = g->dom;
  bdf->bus_number = g->bus;
  bdf->device_number = g->dev;
  bdf->function_number = g->fn;
  return 0;
}

#ifndef FAKE_OLD
int amdsmi_get_gpu_bad_page_info(amdsmi_processor_handle h, uint32_t *n,
                                 amdsmi_retired_page_record_t *out) {
  CHECK_INIT();
  struct gpu *g = gpu_of(h);
  if (!g || !n) return 1;
  if (cfg.no_bad_pages) return AMDSMI_STATUS_NOT_SUPPORTED;
  uint32_t total = g->pages[0] + g->pages[1] + g->pages[2];
  if (!out) {
    *n = total;
    return 0;
  }
  uint32_t k = 0;
  for (int st = 0; st < 3; st++)
    for (unsigned i = 0; i < g->pages[st] && k < *n; i++, k++) {
      out[k].page_address = (uint64_t)(k + 1) << 12;
      out[k].page_size = 4096;
      out[k].status = st;
    }
  *n = k;
  return 0;
}
#endif

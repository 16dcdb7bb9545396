/* A stand-in libhlml.so for node-probe's tests: the functions node-probe calls, with the ABI Intel's own
 * ctypes binding calls them with (PyPI habana-pyhlml 1.24.2.481: pyhlml/main.py, the structs and enums of
 * pyhlml/pyhlml_types_generated.py). tests/truth/hlml_abi.py loads this very library through pyhlml and
 * the truth test compares what pyhlml reads with what node-probe reads.
 *
 *   hlml_return_t            C enum (4 bytes): SUCCESS 0, UNINITIALIZED 1, INVALID_ARGUMENT 2,
 *                            NOT_SUPPORTED 3, INSUFFICIENT_SIZE 7 (pyhlml_types_generated.py:18-31)
 *   hlml_pci_info_t          {uint bus; char bus_id[19]; uint device, domain, pci_device_id;
 *                            hlml_pci_cap_t caps (4 x char[10]); uint pci_rev, pci_subsys_id}
 *                            (pyhlml_types_generated.py:159-177, PCI_ADDR_LEN = 9 + 10 at :248-249)
 *   get_pci_info             (device, hlml_pci_info_t *, uint): pyhlml passes HL_FIELD_MAX_SIZE as a third
 *                            argument (main.py:157-160); declared here so that it is received
 *   get_serial               (device, char *, uint len), HL_FIELD_MAX_SIZE 32 (main.py:616-620)
 *   get_total_ecc_errors     (device, uint error_type, uint counter, long long *) (main.py:428-431)
 *   get_hlml_version,
 *   get_driver_version       (char *, uint len), VERSION_MAX_LEN 128 (main.py:814-833)
 * Every device call answers HLML_ERROR_UNINITIALIZED before hlml_init and after hlml_shutdown. A library
 * unloaded (or a process ending) while still initialised exits 99 with a line on stderr: a reader that
 * skips hlml_shutdown on some path fails the test that takes it.
 *
 * Settings: `fake_hlml.conf` beside the library's real file (realpath of the loaded name, so a load by
 * /proc/self/fd/N finds it too), one `key value` per line:
 *   hlml_version S | driver_version S   what the two version calls report
 *   mode ok|abort|hang|init_fail        abort or hang in hlml_init, or return DRIVER_NOT_LOADED (9)
 *   device BUS_ID SERIAL MODULE CV UV CA UA PENDING
 *                                       a device in the library's order: its bus_id as written, serial,
 *                                       module id, ECC corrected/uncorrected volatile, then aggregate,
 *                                       replaced rows pending (0/1)
 *   nic BUS_ID MASK EXT DOWN            that device's ports 0-63 (hex masks): present, external, link down
 *   throttle BUS_ID MASK                that device's clocks throttle reasons (hex): POWER 1 << 0, THERMAL
 *                                       1 << 1 (pyhlml_types_generated.py:264-265)
 *   long_serial 1                       the serial fills the whole buffer, no NUL (a hostile library)
 *   chatty 1                            hlml_init prints a banner on stdout
 *   get_mac_addr_info                   (device, uint64_t mask[2], uint64_t ext_mask[2]) (main.py:764-771);
 *   nic_get_link                        (device, uint32_t port, bool *up) (main.py:782-788)
 *   get_current_clocks_throttle_reasons (device, unsigned long long *) (main.py:729-733)
 * Loading it creates `fake_hlml.loaded` beside it: a test proves a refused library never ran.
 * Built with -DFAKE_OLD it has no hlml_get_driver_version and no
 * hlml_device_get_replaced_rows_pending_status (an older library's missing symbols).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEVICES 16
#define HLML_SUCCESS 0
#define HLML_ERROR_UNINITIALIZED 1
#define HLML_ERROR_INVALID_ARGUMENT 2
#define HLML_ERROR_NOT_SUPPORTED 3
#define HLML_ERROR_INSUFFICIENT_SIZE 7
#define HLML_ERROR_DRIVER_NOT_LOADED 9
#define CHECK_INIT()                                   \
  do {                                                 \
    if (!initialized) return HLML_ERROR_UNINITIALIZED; \
  } while (0)

typedef void *hlml_device_t;

typedef struct {
  char link_speed[10];
  char link_width[10];
  char link_max_speed[10];
  char link_max_width[10];
} hlml_pci_cap_t;

typedef struct {
  unsigned int bus;
  char bus_id[19];
  unsigned int device;
  unsigned int domain;
  unsigned int pci_device_id;
  hlml_pci_cap_t caps;
  unsigned int pci_rev;
  unsigned int pci_subsys_id;
} hlml_pci_info_t;

struct dev {
  char bus_id[19];
  char serial[64];
  unsigned module;
  unsigned long long ecc[2][2]; /* [error type][counter] */
  unsigned pending;
  unsigned long long ports, ext, down;
  unsigned long long throttle;
};

static int initialized;
static struct {
  int loaded;
  char hlml_version[128];
  char driver_version[128];
  char mode[16];
  int long_serial;
  int chatty;
  int ndev;
  struct dev devs[MAX_DEVICES];
} cfg;

static int conf_path(void *sym, const char *name, char *out, size_t n) {
  Dl_info info;
  char path[4096];
  if (!dladdr(sym, &info) || !info.dli_fname || !realpath(info.dli_fname, path)) return 0;
  char *slash = strrchr(path, '/');
  if (!slash) return 0;
  snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", name);
  snprintf(out, n, "%s", path);
  return 1;
}

static void load(void) {
  if (cfg.loaded) return;
  cfg.loaded = 1;
  strcpy(cfg.mode, "ok");
  strcpy(cfg.hlml_version, "1.24.2-fake");
  strcpy(cfg.driver_version, "1.24.2-fake-driver");
  char path[4096];
  if (!conf_path((void *)load, "fake_hlml.conf", path, sizeof path)) return;
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    struct dev d = {0};
    if (sscanf(line, "hlml_version %127s", cfg.hlml_version) == 1) continue;
    if (sscanf(line, "driver_version %127s", cfg.driver_version) == 1) continue;
    if (sscanf(line, "mode %15s", cfg.mode) == 1) continue;
    if (sscanf(line, "long_serial %d", &cfg.long_serial) == 1) continue;
    if (sscanf(line, "chatty %d", &cfg.chatty) == 1) continue;
    if (sscanf(line, "device %18s %63s %u %llu %llu %llu %llu %u", d.bus_id, d.serial, &d.module,
               &d.ecc[0][0], &d.ecc[1][0], &d.ecc[0][1], &d.ecc[1][1], &d.pending) == 8 &&
        cfg.ndev < MAX_DEVICES) {
      cfg.devs[cfg.ndev++] = d;
      continue;
    }
    char bus[19];
    unsigned long long ports, ext, down, throttle;
    if (sscanf(line, "throttle %18s %llx", bus, &throttle) == 2) {
      for (int i = 0; i < cfg.ndev; i++)
        if (!strcmp(cfg.devs[i].bus_id, bus)) cfg.devs[i].throttle = throttle;
      continue;
    }
    if (sscanf(line, "nic %18s %llx %llx %llx", bus, &ports, &ext, &down) == 4)
      for (int i = 0; i < cfg.ndev; i++)
        if (!strcmp(cfg.devs[i].bus_id, bus)) {
          cfg.devs[i].ports = ports;
          cfg.devs[i].ext = ext;
          cfg.devs[i].down = down;
        }
  }
  fclose(f);
}

__attribute__((constructor)) static void mark_loaded(void) {
  char path[4096];
  if (!conf_path((void *)mark_loaded, "fake_hlml.loaded", path, sizeof path)) return;
  FILE *f = fopen(path, "w");
  if (f) fclose(f);
}

__attribute__((destructor)) static void still_initialised(void) {
  if (!initialized) return;
  static const char msg[] = "fake_hlml: unloaded without hlml_shutdown\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(99);
}

/* Handles are 1-based indexes into cfg.devs. */
static struct dev *dev_of(hlml_device_t h) {
  uintptr_t i = (uintptr_t)h;
  return (i >= 1 && i <= (uintptr_t)cfg.ndev) ? &cfg.devs[i - 1] : NULL;
}

static int put(char *buf, unsigned len, const char *s) {
  if (!buf) return HLML_ERROR_INVALID_ARGUMENT;
  if (strlen(s) + 1 > len) return HLML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buf, s, strlen(s) + 1);
  return HLML_SUCCESS;
}

int hlml_init(void) {
  load();
  if (!strcmp(cfg.mode, "abort")) abort();
  if (!strcmp(cfg.mode, "hang"))
    for (;;) pause();
  if (!strcmp(cfg.mode, "init_fail")) return HLML_ERROR_DRIVER_NOT_LOADED;
  if (cfg.chatty) {
    printf("fake_hlml: hello from the library\n");
    fflush(stdout);
  }
  initialized = 1;
  return HLML_SUCCESS;
}

int hlml_shutdown(void) {
  initialized = 0;
  return HLML_SUCCESS;
}

int hlml_device_get_count(unsigned int *n) {
  CHECK_INIT();
  if (!n) return HLML_ERROR_INVALID_ARGUMENT;
  *n = (unsigned)cfg.ndev;
  return HLML_SUCCESS;
}

int hlml_device_get_handle_by_index(unsigned int index, hlml_device_t *out) {
  CHECK_INIT();
  if (!out || index >= (unsigned)cfg.ndev) return HLML_ERROR_INVALID_ARGUMENT;
  *out = (hlml_device_t)(uintptr_t)(index + 1);
  return HLML_SUCCESS;
}

int hlml_device_get_pci_info(hlml_device_t h, hlml_pci_info_t *pci, unsigned int unused) {
  (void)unused;
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !pci) return HLML_ERROR_INVALID_ARGUMENT;
  memset(pci, 0, sizeof *pci);
  unsigned dom = 0, bus = 0, slot = 0, fn = 0;
  sscanf(d->bus_id, "%x:%x:%x.%x", &dom, &bus, &slot, &fn);
  pci->bus = bus;
  memcpy(pci->bus_id, d->bus_id, sizeof pci->bus_id);
  pci->device = slot;
  pci->domain = dom;
  pci->pci_device_id = (0x1020u << 16) | 0x1da3u;
  strcpy(pci->caps.link_speed, "32.0 GT/s");
  strcpy(pci->caps.link_width, "x16");
  pci->pci_rev = 1;
  return HLML_SUCCESS;
}

int hlml_device_get_serial(hlml_device_t h, char *serial, unsigned int length) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d) return HLML_ERROR_INVALID_ARGUMENT;
  if (cfg.long_serial && serial) {
    memset(serial, 'X', length);
    return HLML_SUCCESS;
  }
  return put(serial, length, d->serial);
}

int hlml_device_get_module_id(hlml_device_t h, unsigned int *module_id) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !module_id) return HLML_ERROR_INVALID_ARGUMENT;
  *module_id = d->module;
  return HLML_SUCCESS;
}

int hlml_device_get_total_ecc_errors(hlml_device_t h, unsigned int error_type, unsigned int counter,
                                     long long *count) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !count || error_type > 1 || counter > 1) return HLML_ERROR_INVALID_ARGUMENT;
  *count = (long long)d->ecc[error_type][counter];
  return HLML_SUCCESS;
}

int hlml_get_mac_addr_info(hlml_device_t h, uint64_t *mask, uint64_t *ext_mask) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !mask || !ext_mask) return HLML_ERROR_INVALID_ARGUMENT;
  mask[0] = d->ports;
  mask[1] = 0;
  ext_mask[0] = d->ext;
  ext_mask[1] = 0;
  return HLML_SUCCESS;
}

int hlml_nic_get_link(hlml_device_t h, uint32_t port, bool *up) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !up || port >= 64 || !(d->ports >> port & 1)) return HLML_ERROR_INVALID_ARGUMENT;
  *up = !(d->down >> port & 1);
  return HLML_SUCCESS;
}

int hlml_device_get_current_clocks_throttle_reasons(hlml_device_t h, unsigned long long *reasons) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !reasons) return HLML_ERROR_INVALID_ARGUMENT;
  *reasons = d->throttle;
  return HLML_SUCCESS;
}

int hlml_get_hlml_version(char *version, unsigned int length) {
  return put(version, length, cfg.hlml_version);
}

#ifndef FAKE_OLD
int hlml_get_driver_version(char *version, unsigned int length) {
  return put(version, length, cfg.driver_version);
}

int hlml_device_get_replaced_rows_pending_status(hlml_device_t h, unsigned int *is_pending) {
  CHECK_INIT();
  struct dev *d = dev_of(h);
  if (!d || !is_pending) return HLML_ERROR_INVALID_ARGUMENT;
  *is_pending = d->pending;
  return HLML_SUCCESS;
}
#endif

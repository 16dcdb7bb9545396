/*
 * A fake libnvidia-ml for node-probe's tests: a handful of NVML entry points with fixed answers, so the
 * NVML collector runs end to end without a GPU.
 *
 * Struct layouts mirror nvml-wrapper-sys 0.10 (bindings.rs), which mirrors nvml.h (NVML API 12/13);
 * tests/truth/nvml_abi.rs checks them, the status codes and the numbers answered below against NVIDIA's own
 * nvml.h (PyPI nvidia-nvml-dev 13.5.37).
 * Most NVML symbols are deliberately absent: the probe must report them inline as function_not_found.
 *
 * The node: 4 GPUs.
 *   GPU 0  healthy H100; NVLink 0 active, link 1 inactive; fabric registered (answers only the v2 struct).
 *   GPU 1  answers name/uuid/serial, then falls off the bus at nvmlDeviceGetPciInfo_v3 (GPU_IS_LOST ever
 *          after): a GPU lost mid-collection.
 *   GPU 2  its handle cannot be had (NO_PERMISSION, like a device hidden by the container's cgroup).
 *   GPU 3  H100 in MIG mode with one MIG device; HW thermal slowdown; remapped rows not supported (MIG);
 *          no events.
 * Events: the first two waits return XID 79 on GPU 0, then a recovery action (2, node reboot) on GPU 0
 * with MIG ids; the third times out at once (so tests do not sleep).
 * Minor numbers equal the indices unless FAKE_NVML_MINORS lists them by index ("1,0,3,2": GPU 0 is
 * /dev/nvidia1), as on hosts whose driver numbered the GPUs in another order than NVML's PCI order.
 * FAKE_NVML_SCRIPT plays values over time (seconds since nvmlInit in this process), one line of segments
 * `GPU:FROM-TO:key=value,...` separated by ';' (the last segment covering an instant wins):
 *   util (percent: nvmlDeviceGetUtilizationRates answers only while a segment sets it), power (mW),
 *   sm (MHz, also graphics), reasons (clocks-event mask); and rates per second, integrated over time:
 *   replay (NVLink link 0 replays), ecc (volatile corrected ECC errors).
 * Settings (FAKE_NVML_PID, FAKE_NVML_HANG_SECS, FAKE_NVML_LOG, FAKE_NVML_RECOVERY_ACTION,
 * FAKE_NVML_MINORS, FAKE_NVML_SCRIPT) come from the
 * environment or, where the process that loads the library has no such variable (node-probe in a real probe
 * pod), from a file of that name next to the library (the real-node testbed writes them there).
 * Build: cc -shared -fPIC -o libnvidia-ml.so.1 fake_nvml.c
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

typedef union {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId, scopeId;
    long long timestamp, latencyUsec;
    unsigned int valueType; /* 1 unsigned int, 3 unsigned long long */
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct {
    unsigned int version;
    unsigned char clusterUuid[16];
    nvmlReturn_t status;
    unsigned int cliqueId;
    unsigned char state;
    unsigned int healthMask;
} nvmlGpuFabricInfo_v2_t;

/* Layout checks against the Rust bindings (see raw.rs tests for the other side). */
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t");
_Static_assert(offsetof(nvmlFieldValue_t, value) == 32, "nvmlFieldValue_t.value");
_Static_assert(sizeof(nvmlGpuFabricInfo_v2_t) == 36, "nvmlGpuFabricInfo_v2_t");

#define NGPU 4
struct gpu {
    int index;
    int lost; /* GPU 1 sets this at nvmlDeviceGetPciInfo_v3 */
};
static struct gpu gpus[NGPU] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}};
struct mig { int parent; };
static struct mig mig3 = {3};

/* A setting: the environment variable, else the first line of the file of that name beside this library. */
static const char *setting(const char *name) {
    const char *v = getenv(name);
    if (v) return v;
    Dl_info info;
    if (!dladdr((void *)&setting, &info) || !info.dli_fname) return NULL;
    char path[4096];
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return NULL;
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[8][256];
    static int next;
    char *out = buf[next++ % 8];
    if (!fgets(out, sizeof buf[0], f)) out = NULL;
    fclose(f);
    if (out) out[strcspn(out, "\n")] = 0;
    return out;
}

typedef struct gpu *nvmlDevice_t;
#define IS_MIG(d) ((void *)(d) == (void *)&mig3)
/* With FAKE_NVML_LOG=PATH, every device call appends "function gpu-index" (or "function mig") to PATH,
 * so tests can check which queries a command made. */
static void note(const char *fn, nvmlDevice_t d) {
    const char *path = setting("FAKE_NVML_LOG");
    if (!path || !d) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    if (IS_MIG(d)) fprintf(f, "%s mig\n", fn);
    else fprintf(f, "%s %d\n", fn, d->index);
    fclose(f);
}

/* Every device call starts here: lost stays lost. */
#define CHECK(d)                                                                                         \
    do {                                                                                                 \
        note(__func__, (d));                                                                             \
        if (!(d)) return NVML_ERROR_INVALID_ARGUMENT;                                                    \
        if (!IS_MIG(d) && (d)->lost) return NVML_ERROR_GPU_IS_LOST;                                      \
    } while (0)

static nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src) {
    if (strlen(src) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

/* The script's clock: seconds since this process first initialised NVML. */
static double t0 = -1;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = ts.tv_sec + ts.tv_nsec / 1e9;
    if (t0 < 0) t0 = t;
    return t - t0;
}

/* Walk the script's segments for `gpu` and `key`: with `rate` 0, the value of the last segment covering now
 * (returns 1 when one does); with `rate` 1, the sum of each segment's value times its time elapsed so far. */
static int scripted(int gpu, const char *key, int rate, double *out) {
    const char *s = setting("FAKE_NVML_SCRIPT");
    if (!s) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    double t = now_s(), sum = 0;
    int found = 0;
    char *save1 = NULL;
    for (char *seg = strtok_r(buf, ";", &save1); seg; seg = strtok_r(NULL, ";", &save1)) {
        int g;
        double from, to;
        int used = 0;
        if (sscanf(seg, "%d:%lf-%lf:%n", &g, &from, &to, &used) < 3 || used == 0 || g != gpu) continue;
        char *save2 = NULL;
        for (char *kv = strtok_r(seg + used, ",", &save2); kv; kv = strtok_r(NULL, ",", &save2)) {
            char *eq = strchr(kv, '=');
            if (!eq || (size_t)(eq - kv) != strlen(key) || strncmp(kv, key, strlen(key)) != 0) continue;
            double v = strtod(eq + 1, NULL);
            if (rate) {
                double end = t < to ? t : to;
                if (end > from) sum += v * (end - from);
                found = 1;
            } else if (t >= from && t < to) {
                *out = v;
                found = 1;
            }
        }
    }
    if (rate) *out = sum;
    return found;
}

nvmlReturn_t nvmlInit_v2(void) { now_s(); return NVML_SUCCESS; }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t r) {
    static char buf[32];
    snprintf(buf, sizeof buf, "fake NVML error %d", r);
    return buf;
}

/* 580.82+ renumbers field ids 251-273: the probe must ask for 269-271 here. */
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) { return copy_str(v, len, "580.95.05"); }
nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len) { return copy_str(v, len, "13.580.95.05"); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = 13000; return NVML_SUCCESS; }

/* With FAKE_NVML_HANG_SECS=N the device count blocks for N seconds: a GPU whose driver stopped answering. */
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    const char *hang = setting("FAKE_NVML_HANG_SECS");
    if (hang) sleep((unsigned)atoi(hang));
    *n = NGPU;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (i >= NGPU) return NVML_ERROR_INVALID_ARGUMENT;
    if (i == 2) return NVML_ERROR_NO_PERMISSION;
    *d = &gpus[i];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    CHECK(d);
    return copy_str(name, len, IS_MIG(d) ? "NVIDIA H100 80GB HBM3 MIG 3g.40gb" : "NVIDIA H100 80GB HBM3");
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len) {
    CHECK(d);
    if (IS_MIG(d)) return copy_str(uuid, len, "MIG-1b2c3d4e-0000-4000-8000-000000000003");
    char buf[64];
    snprintf(buf, sizeof buf, "GPU-5f1c1a5e-0000-4000-8000-00000000000%d", d->index);
    return copy_str(uuid, len, buf);
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor) {
    CHECK(d);
    *minor = d->index;
    const char *list = setting("FAKE_NVML_MINORS");
    for (int i = 0; list && *list; i++) {
        char *end;
        unsigned long m = strtoul(list, &end, 10);
        if (end == list) break;
        if (i == d->index) *minor = (unsigned int)m;
        list = *end == ',' ? end + 1 : end;
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t d, char *serial, unsigned int len) {
    CHECK(d);
    char buf[32];
    snprintf(buf, sizeof buf, "165492200000%d", d->index);
    return copy_str(serial, len, buf);
}

static const unsigned int bus_of[NGPU] = {0x1b, 0x43, 0x52, 0xc3};

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) {
    CHECK(d);
    if (d->index == 1) {
        d->lost = 1;
        return NVML_ERROR_GPU_IS_LOST;
    }
    memset(p, 0, sizeof *p);
    p->bus = bus_of[d->index];
    p->pciDeviceId = 0x233010DE;
    p->pciSubSystemId = 0x16C110DE;
    snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", p->bus);
    snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "0000:%02X:00.0", p->bus);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t d, unsigned int *a) { CHECK(d); *a = 9; return NVML_SUCCESS; }

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor) {
    CHECK(d);
    *major = 9;
    *minor = 0;
    return NVML_SUCCESS;
}

/* Only the v1 call: the probe falls back to it when _v2 is missing (older drivers). */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    CHECK(d);
    if (IS_MIG(d)) {
        m->total = 42949672960ULL;
        m->used = 12582912ULL;
    } else {
        m->total = 85520809984ULL;
        m->used = d->index == 0 ? 1073741824ULL : 0;
    }
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pend) {
    CHECK(d);
    *cur = *pend = d->index == 3;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *n) {
    CHECK(d);
    *n = d->index == 3 ? 2 : 0;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int i, nvmlDevice_t *m) {
    CHECK(d);
    if (d->index != 3 || i != 0) return NVML_ERROR_NOT_FOUND;
    *m = (nvmlDevice_t)(void *)&mig3;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id) {
    if (!IS_MIG(d)) return NVML_ERROR_INVALID_ARGUMENT;
    *id = 1;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id) {
    if (!IS_MIG(d)) return NVML_ERROR_INVALID_ARGUMENT;
    *id = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t d, unsigned int *m) {
    CHECK(d);
    *m = d->index == 0 ? 3 : 0; /* exclusive_process, default */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int *g) { CHECK(d); *g = 5; return NVML_SUCCESS; }
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int *w) { CHECK(d); *w = 16; return NVML_SUCCESS; }
nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned int *g) { CHECK(d); *g = 5; return NVML_SUCCESS; }
/* GPU 0 trained at x8 of x16. */
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned int *w) { CHECK(d); *w = d->index == 0 ? 8 : 16; return NVML_SUCCESS; }
nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t d, unsigned int *c) { CHECK(d); *c = 12; return NVML_SUCCESS; }

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, unsigned int sensor, unsigned int *t) {
    CHECK(d);
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
    *t = d->index == 3 ? 91 : 41;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d, unsigned int kind, unsigned int *t) {
    CHECK(d);
    switch (kind) {
    case 0: *t = 92; return NVML_SUCCESS; /* shutdown */
    case 1: *t = 89; return NVML_SUCCESS; /* slowdown */
    case 2: *t = 95; return NVML_SUCCESS; /* memory max */
    case 3: *t = 87; return NVML_SUCCESS; /* gpu max */
    default: return NVML_ERROR_NOT_SUPPORTED;
    }
}

/* Passively cooled: no fans of its own. Any fan index is then out of range, and the driver says so as a
 * bad argument (580.159.04 on an H100 SXM), not as "not supported". */
nvmlReturn_t nvmlDeviceGetNumFans(nvmlDevice_t d, unsigned int *n) { CHECK(d); *n = 0; return NVML_SUCCESS; }
nvmlReturn_t nvmlDeviceGetFanSpeed_v2(nvmlDevice_t d, unsigned int fan, unsigned int *s) {
    CHECK(d);
    (void)fan;
    (void)s;
    return NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p) {
    CHECK(d);
    double v;
    *p = scripted(d->index, "power", 0, &v) ? (unsigned int)v : 312000;
    return NVML_SUCCESS;
}

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
/* Only a script answers (absent otherwise, as the tests of the unscripted fake expect). */
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    CHECK(d);
    double v;
    if (!scripted(d->index, "util", 0, &v)) return 13; /* NVML_ERROR_FUNCTION_NOT_FOUND */
    u->gpu = (unsigned int)v;
    u->memory = (unsigned int)(v / 2);
    return NVML_SUCCESS;
}

static const unsigned int clocks[3] = {1980, 1980, 2619}; /* graphics, sm, memory */
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, unsigned int type, unsigned int *c) {
    CHECK(d);
    if (type > 2) return NVML_ERROR_INVALID_ARGUMENT;
    *c = d->index == 3 && type < 2 ? 705 : clocks[type];
    double v;
    if (type < 2 && scripted(d->index, "sm", 0, &v)) *c = (unsigned int)v;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, unsigned int type, unsigned int *c) {
    CHECK(d);
    if (type > 2) return NVML_ERROR_INVALID_ARGUMENT;
    *c = clocks[type];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t d, unsigned int *p) { CHECK(d); *p = d->index == 3 ? 2 : 0; return NVML_SUCCESS; }

/* GPU 0: GpuIdle | SwPowerCap | bit 40 (a reason newer than any header the probe knows). GPU 3: HW thermal. */
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *r) {
    CHECK(d);
    *r = d->index == 3 ? 0x48ULL : (0x1ULL | 0x4ULL | (1ULL << 40));
    double v;
    if (scripted(d->index, "reasons", 0, &v)) *r = (unsigned long long)v;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pend) {
    CHECK(d);
    *cur = *pend = 1;
    return NVML_SUCCESS;
}

/* errorType 0 corrected / 1 uncorrected; counterType 0 volatile / 1 aggregate. */
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, unsigned int err, unsigned int counter,
                                         unsigned long long *n) {
    CHECK(d);
    static const unsigned long long v[2][2] = {{10, 100}, {0, 2}};
    if (err > 1 || counter > 1) return NVML_ERROR_INVALID_ARGUMENT;
    *n = v[err][counter];
    double grown;
    if (err == 0 && counter == 0 && scripted(d->index, "ecc", 1, &grown)) *n += (unsigned long long)grown;
    return NVML_SUCCESS;
}

/* Only device memory (location 2) has counters; the rest are unsupported on this GPU. */
nvmlReturn_t nvmlDeviceGetMemoryErrorCounter(nvmlDevice_t d, unsigned int err, unsigned int counter,
                                             unsigned int location, unsigned long long *n) {
    CHECK(d);
    if (location != 2) return NVML_ERROR_NOT_SUPPORTED;
    static const unsigned long long v[2][2] = {{7, 70}, {0, 1}};
    if (err > 1 || counter > 1) return NVML_ERROR_INVALID_ARGUMENT;
    *n = v[err][counter];
    double grown;
    if (err == 0 && counter == 0 && scripted(d->index, "ecc", 1, &grown)) *n += (unsigned long long)grown;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failure) {
    CHECK(d);
    if (d->index == 3) return NVML_ERROR_NOT_SUPPORTED; /* MIG instances active */
    *corr = 1;
    *unc = 0;
    *pending = 1;
    *failure = 0;
    return NVML_SUCCESS;
}

/* Field 230, the driver's recovery action: 1 (GPU reset) on GPU 0, none elsewhere. FAKE_NVML_RECOVERY_ACTION
 * = "INDEX:ACTION" sets it for one GPU (the real-node reset test, whose fake nvidia-smi -r clears it). */
static unsigned int recovery_action(int index) {
    const char *s = setting("FAKE_NVML_RECOVERY_ACTION");
    int i, a;
    if (s && sscanf(s, "%d:%d", &i, &a) == 2 && i == index) return (unsigned int)a;
    return index == 0 ? 1 : 0;
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int count, nvmlFieldValue_t *values) {
    CHECK(d);
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *f = &values[i];
        f->nvmlReturn = NVML_SUCCESS;
        f->valueType = 3;
        switch (f->fieldId) {
        case 82: f->valueType = 1; f->value.uiVal = 45; break;       /* memory temperature */
        case 74: f->value.ullVal = 1234; break;                      /* sw power cap ns */
        case 76: f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED; break;    /* sync boost */
        case 269: f->value.ullVal = 111; break;                      /* sw thermal (580.82+ id) */
        case 270: f->value.ullVal = d->index == 3 ? 9000000000ULL : 222; break; /* hw thermal */
        case 271: f->value.ullVal = 333; break;                      /* hw power brake */
        case 230: f->valueType = 1; f->value.uiVal = recovery_action(d->index); break;
        default: f->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT; break; /* unknown to this "driver" */
        }
    }
    return NVML_SUCCESS;
}

/* One compute process on GPU 0; the first call (no buffer) asks for the count. */
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    CHECK(d);
    unsigned int n = d->index == 0 ? 1 : 0;
    if (*count < n || (!infos && n)) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *count = n;
    if (n) {
        /* FAKE_NVML_PID: the operator tests put a child process of their own on GPU 0. */
        const char *pid = setting("FAKE_NVML_PID");
        infos[0].pid = pid ? (unsigned int)atoi(pid) : 4242;
        infos[0].usedGpuMemory = 1048576000ULL;
        infos[0].gpuInstanceId = 0xFFFFFFFFu;
        infos[0].computeInstanceId = 0xFFFFFFFFu;
    }
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                       nvmlProcessInfo_t *infos) {
    CHECK(d);
    (void)infos;
    *count = 0;
    return NVML_SUCCESS;
}

/* Links 0 and 1 exist (0 active, 1 down); asking for link 2 is an invalid argument. */
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t d, unsigned int link, unsigned int *active) {
    CHECK(d);
    if (d->index != 0) return NVML_ERROR_NOT_SUPPORTED;
    if (link > 1) return NVML_ERROR_INVALID_ARGUMENT;
    *active = link == 0;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t d, unsigned int link, unsigned int *v) {
    CHECK(d);
    if (link > 1) return NVML_ERROR_INVALID_ARGUMENT;
    *v = 4;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t d, unsigned int link, nvmlPciInfo_t *p) {
    CHECK(d);
    if (link != 0) return NVML_ERROR_NOT_SUPPORTED;
    memset(p, 0, sizeof *p);
    p->bus = 0xc3;
    snprintf(p->busId, sizeof p->busId, "00000000:C3:00.0");
    return NVML_SUCCESS;
}
/* counter 0 replay, 1 recovery, 2 crc flit, 3 crc data */
nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(nvmlDevice_t d, unsigned int link, unsigned int counter,
                                             unsigned long long *n) {
    CHECK(d);
    if (link > 1 || counter > 4) return NVML_ERROR_INVALID_ARGUMENT;
    *n = counter == 2 ? 5 : 0;
    double v;
    if (link == 0 && counter == 0 && scripted(d->index, "replay", 1, &v)) *n += (unsigned long long)v;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, unsigned int *level) {
    CHECK(a);
    CHECK(b);
    *level = 40; /* same NUMA node */
    return NVML_SUCCESS;
}

/* index 0 read, 1 write, 2 nvlink, 3 atomics: atomics unsupported, the rest OK. */
nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, unsigned int index, unsigned int *status) {
    CHECK(a);
    CHECK(b);
    if (index == 3) return NVML_ERROR_NOT_SUPPORTED;
    *status = index == 2 ? 4 : 0; /* nvlink: 4 = NVML_P2P_STATUS_GPU_NOT_SUPPORTED */
    return NVML_SUCCESS;
}

/* GPU 0 is near NUMA node 0; GPU 3 does not say (the probe falls back to sysfs). */
nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t d, unsigned int size, unsigned long *set, unsigned int scope) {
    CHECK(d);
    if (d->index == 3) return NVML_ERROR_NOT_SUPPORTED;
    if (size < 1 || scope != 0) return NVML_ERROR_INVALID_ARGUMENT;
    memset(set, 0, size * sizeof *set);
    set[0] = 0x1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t d, unsigned int size, unsigned long *set) {
    CHECK(d);
    if (size < 2) return NVML_ERROR_INSUFFICIENT_SIZE;
    memset(set, 0, size * sizeof *set);
    if (d->index == 3) set[1] = 0x3; /* CPUs 64, 65 */
    else set[0] = 0xff;              /* CPUs 0-7 */
    return NVML_SUCCESS;
}

/* Understands only the v2 struct, like a driver older than the probe's bindings. */
nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t d, nvmlGpuFabricInfo_v2_t *f) {
    CHECK(d);
    if (f->version != (sizeof(nvmlGpuFabricInfo_v2_t) | (2u << 24))) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (d->index != 0) return NVML_ERROR_NOT_SUPPORTED;
    for (int i = 0; i < 16; i++) f->clusterUuid[i] = (unsigned char)(0x10 + i);
    f->status = NVML_SUCCESS;
    f->cliqueId = 7;
    f->state = 3; /* completed */
    f->healthMask = 0;
    return NVML_SUCCESS;
}

/* Events. */
typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType, eventData;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;
_Static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t");

static int event_set_token;
static int waits;

nvmlReturn_t nvmlEventSetCreate(void **set) {
    *set = &event_set_token;
    waits = 0;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlEventSetFree(void *set) { return set == &event_set_token ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT; }

/* XID | double-bit ECC | recovery action on GPU 0; nothing on GPU 3. */
nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t d, unsigned long long *types) {
    CHECK(d);
    *types = d->index == 0 ? (0x8ULL | 0x2ULL | 0x8000ULL | 0x4ULL) : 0;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, void *set) {
    CHECK(d);
    if (set != &event_set_token || types != (0x8ULL | 0x2ULL | 0x8000ULL)) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlEventSetWait_v2(void *set, nvmlEventData_t *data, unsigned int timeout_ms) {
    (void)timeout_ms;
    if (set != &event_set_token) return NVML_ERROR_INVALID_ARGUMENT;
    memset(data, 0, sizeof *data);
    data->device = &gpus[0];
    data->gpuInstanceId = data->computeInstanceId = 0xFFFFFFFFu;
    switch (waits++) {
    case 0: data->eventType = 0x8; data->eventData = 79; return NVML_SUCCESS;
    case 1:
        data->eventType = 0x8000;
        data->eventData = 2;
        data->gpuInstanceId = 1;
        data->computeInstanceId = 0;
        return NVML_SUCCESS;
    default: return 10; /* NVML_ERROR_TIMEOUT */
    }
}

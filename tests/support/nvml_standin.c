/*
 * A stand-in for the NVIDIA driver's libnvidia-ml.so.1, for machines without a GPU.
 *
 * It implements the NVML entry points nvidia-ml-py (pynvml) calls for `daemon/gpu/nvml_probe.py`, with NVML's C
 * signatures and return codes, so the real pynvml loads it (dlopen "libnvidia-ml.so.1" found through
 * LD_LIBRARY_PATH) and talks to it as to the driver. What it reports comes from the environment:
 *
 *   NVML_STANDIN_NAME         the GPU's name            (default "NVIDIA GeForce RTX 3060")
 *   NVML_STANDIN_COUNT        how many GPUs             (default 1)
 *   NVML_STANDIN_TOTAL_MIB    each GPU's memory, MiB    (default 12288)
 *   NVML_STANDIN_FREE_MIB     its free memory, MiB      (default TOTAL_MIB - 300)
 *   NVML_STANDIN_DRIVER       the driver version        (default "535.261.03")
 *   NVML_STANDIN_CUDA         the CUDA driver version as NVML encodes it (default 12020: CUDA 12.2)
 *   NVML_STANDIN_INIT_ERROR   an NVML error code nvmlInitWithFlags returns (9: driver not loaded)
 *
 * Build: cc -shared -fPIC -o libnvidia-ml.so.1 nvml_standin.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
#define NVML_STRUCT_VERSION(size, ver) ((unsigned int)(size) | ((ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(sizeof(nvmlMemory_v2_t), 2)
#define MIB (1024ULL * 1024ULL)
#define RESERVED_MIB 250ULL /* what a real driver keeps for itself on a 12 GB card */

static int initialised = 0;
static struct nvmlDevice_st { unsigned int index; } devices[16];

static const char *env_or(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

static unsigned long long env_number(const char *name, unsigned long long fallback) {
    const char *value = getenv(name);
    return value && *value ? strtoull(value, NULL, 10) : fallback;
}

static unsigned int count(void) {
    unsigned long long n = env_number("NVML_STANDIN_COUNT", 1);
    return n > 16 ? 16 : (unsigned int)n;
}

static nvmlReturn_t copy_text(const char *text, char *out, unsigned int length) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

static int valid(nvmlDevice_t device) {
    return initialised && device != NULL && device >= devices && device < devices + count();
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    nvmlReturn_t error = (nvmlReturn_t)env_number("NVML_STANDIN_INIT_ERROR", 0);
    if (error != NVML_SUCCESS) return error;
    initialised++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    initialised--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    return copy_text(env_or("NVML_STANDIN_DRIVER", "535.261.03"), version, length);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
    if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *version = (int)env_number("NVML_STANDIN_CUDA", 12020);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) { return nvmlSystemGetCudaDriverVersion_v2(version); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *device_count) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (device_count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *device_count = count();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || index >= count()) return NVML_ERROR_INVALID_ARGUMENT;
    devices[index].index = index;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    if (!valid(device)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_text(env_or("NVML_STANDIN_NAME", "NVIDIA GeForce RTX 3060"), name, length);
}

static void memory_of(unsigned long long *total, unsigned long long *free_bytes) {
    unsigned long long total_mib = env_number("NVML_STANDIN_TOTAL_MIB", 12288);
    *total = total_mib * MIB;
    *free_bytes = env_number("NVML_STANDIN_FREE_MIB", total_mib - 300) * MIB;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    if (!valid(device) || memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory_of(&memory->total, &memory->free);
    memory->used = memory->total - memory->free;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    if (!valid(device) || memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory_of(&memory->total, &memory->free);
    memory->reserved = RESERVED_MIB * MIB;
    memory->used = memory->total - memory->free - memory->reserved;
    return NVML_SUCCESS;
}

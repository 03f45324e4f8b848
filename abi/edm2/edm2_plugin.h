/* edm2_plugin.h: the core of the edm2 plugin ABI: versions, status codes, the host-services table,
 * config schemas, plugin descriptors and the single exported entry symbol of every plugin .so.
 *
 * Rules of this ABI (read these before writing a plugin):
 *  - A plugin .so exports exactly one symbol, the data object `edm2_plugin_entry` (EDM2_ENTRY_SYMBOL).
 *    Its first field is the ABI version the plugin was built against. The host accepts a plugin whose
 *    major version equals its own, whatever the minor; it refuses any other major.
 *  - Within one major version, structs only grow by appending fields; each starts with `struct_size`
 *    so that either side can tell which fields the other knows.
 *  - A plugin never exits or aborts the process. Every fallible function returns an edm2_status;
 *    the human-readable reason goes through edm2_host.log before returning.
 *  - Plugins keep no global mutable state: everything lives in the instances they create.
 *  - Memory: whoever allocates frees. Strings handed to a plugin are valid for the duration of
 *    the call unless stated otherwise; strings a plugin returns in descriptors are static.
 *
 * Version history (minor versions only ever add):
 *   1.0  first version: kinds backend, network, loss, optimizer, ema, sampler.
 *   1.1  edm2_backend_vtable.native (device, stream, cuBLAS/cuBLASLt/cuDNN handles, workspace);
 *        edm2_philox.h (the random mapping) is part of the ABI; the host checks every function table's
 *        struct_size and refuses NULL required functions when it loads a plugin; edm2_host.threads
 *        may be lowered between calls; backend host_alloc/host_free/upload_async.
 *   1.2  data-parallel training: edm2_host.rank/world_size/local_rank and its host-memory collectives
 *        (comm_broadcast, comm_allgather, comm_barrier); backend reduce_sum and broadcast.
 *   1.3  the kinds features (edm2_features.h): fixed image networks whose features metrics compare (FID),
 *        and vae (edm2_vae.h): autoencoders between images and the latents a network trains on; the
 *        optimizer's nonfinite (gradient entries its last step set to 0).
 *
 * Function tables: each starts with struct_size; the host reads a field only when struct_size covers
 * it, so a 1.0 plugin loads in a 1.1 host. Every function of a kind's 1.0 table is required (non-NULL)
 * except where the header says "optional"; functions added in later minors are optional.
 */
#ifndef EDM2_PLUGIN_H
#define EDM2_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDM2_ABI_MAJOR 1
#define EDM2_ABI_MINOR 3
#define EDM2_ENTRY_SYMBOL "edm2_plugin_entry"

/* Marks the entry symbol as exported even when plugins build with -fvisibility=hidden. */
#if defined(_WIN32)
#define EDM2_EXPORT __declspec(dllexport)
#else
#define EDM2_EXPORT __attribute__((visibility("default")))
#endif

typedef struct edm2_version {
    uint16_t major;
    uint16_t minor;
} edm2_version;

/* Status codes. 0 is success; everything else comes with a message logged through the host. */
typedef enum edm2_status {
    EDM2_OK = 0,
    EDM2_ERR_INVALID = 1,     /* bad argument, config value or shape */
    EDM2_ERR_NOMEM = 2,       /* allocation failed (host or device) */
    EDM2_ERR_UNSUPPORTED = 3, /* feature not offered by this plugin */
    EDM2_ERR_NODEVICE = 4,    /* the backend's device is absent (e.g. no CUDA device) */
    EDM2_ERR_IO = 5,          /* reading or writing a file failed */
    EDM2_ERR_NUMERIC = 6,     /* non-finite values where finite ones were required */
    EDM2_ERR_INTERNAL = 7     /* a bug: an invariant did not hold */
} edm2_status;

typedef enum edm2_log_level {
    EDM2_LOG_DEBUG = 0,
    EDM2_LOG_INFO = 1,
    EDM2_LOG_WARN = 2,
    EDM2_LOG_ERROR = 3
} edm2_log_level;

/* The plugin kinds. The kind decides which vtable type `edm2_plugin_desc.vtable` points to. */
typedef enum edm2_kind {
    EDM2_KIND_BACKEND = 0,   /* edm2_backend_vtable   (edm2_backend.h)   */
    EDM2_KIND_NETWORK = 1,   /* edm2_network_vtable   (edm2_network.h)   */
    EDM2_KIND_LOSS = 2,      /* edm2_loss_vtable      (edm2_loss.h)      */
    EDM2_KIND_OPTIMIZER = 3, /* edm2_optimizer_vtable (edm2_optimizer.h) */
    EDM2_KIND_EMA = 4,       /* edm2_ema_vtable       (edm2_ema.h)       */
    EDM2_KIND_SAMPLER = 5,   /* edm2_sampler_vtable   (edm2_sampler.h)   */
    EDM2_KIND_FEATURES = 6,  /* edm2_features_vtable  (edm2_features.h), ABI 1.3 */
    EDM2_KIND_VAE = 7,       /* edm2_vae_vtable       (edm2_vae.h), ABI 1.3 */
    EDM2_KIND_COUNT_ = 8     /* kinds this header knows; grows with new kinds (a host refuses kinds beyond its own) */
} edm2_kind;

/* Which backend's memory a plugin computes on. EDM2_BACKEND_ANY plugins only touch memory through
 * the backend operations the host gives them, so they run on every backend. */
typedef enum edm2_backend_id {
    EDM2_BACKEND_ANY = 0,
    EDM2_BACKEND_CPU = 1,
    EDM2_BACKEND_CUDA = 2
} edm2_backend_id;

/* ---- Config schema ---------------------------------------------------------------------------- */

typedef enum edm2_config_type {
    EDM2_CFG_BOOL = 0,       /* true/false, yes/no, on/off, 1/0 */
    EDM2_CFG_INT = 1,        /* 64-bit signed integer */
    EDM2_CFG_FLOAT = 2,      /* double */
    EDM2_CFG_STRING = 3,     /* any text */
    EDM2_CFG_INT_LIST = 4,   /* comma-separated integers; may be empty */
    EDM2_CFG_FLOAT_LIST = 5  /* comma-separated floats; may be empty */
} edm2_config_type;

/* One config key a plugin accepts. The host validates every INI value against this before the
 * plugin sees it, suggests the closest key on typos, and prints these for `plugins --describe`. */
typedef struct edm2_config_key {
    const char *name;          /* key as written in the INI section, e.g. "model_channels" */
    edm2_config_type type;
    const char *default_value; /* text, parsed like an INI value; NULL = required, no default */
    const char *help;          /* one line */
} edm2_config_key;

/* Read access to the validated values of one INI section, handed to a plugin's create(). */
typedef struct edm2_config {
    uint32_t struct_size;
    const void *ctx; /* host-owned */
    /* Called by the plugin during create(). Returns the value of `key` as text: the INI's value when
     * the section sets it, the schema default otherwise; NULL when the key is not in the plugin's
     * schema or has neither. The text stays valid until create() returns; it has already been
     * checked to parse as the key's type. */
    const char *(*get)(const void *ctx, const char *key);
} edm2_config;

/* ---- Host services ---------------------------------------------------------------------------- */

/* Services the host lends to every plugin instance. Host-owned; valid for the instance's lifetime. */
typedef struct edm2_host {
    uint32_t struct_size;
    edm2_version abi; /* the host's ABI version */
    void *ctx;        /* host-owned, passed back to the callbacks below */
    /* Called by plugins at any time, from any thread. `who` is the plugin id; `msg` one line without
     * a trailing newline. Errors logged here are what the user sees, so name the key/shape at fault. */
    void (*log)(void *ctx, edm2_log_level level, const char *who, const char *msg);
    /* CPU threads the plugin may use (>= 1). The host may lower it (never above its value at create)
     * between calls while other programs compete for the cores, so read it at each call instead of
     * keeping a copy; a plugin's results must not depend on it. */
    int threads;
    /* ---- ABI 1.2: the process group of a data-parallel run (rank 0 of 1 otherwise). Read only when
     * struct_size covers them. Processes of one node share it (local_rank: 0..; one GPU each). ---- */
    int rank, world_size, local_rank;
    /* Collectives over host memory among all processes (MPI underneath), called by every process in the
     * same order; each returns EDM2_OK or an error (logged) when the others do not answer within the
     * host's deadline. NULL when world_size is 1. */
    edm2_status (*comm_broadcast)(void *ctx, void *buf, size_t bytes, int root);
    /* recv[world_size * bytes_each] = every process's send[bytes_each], in rank order. */
    edm2_status (*comm_allgather)(void *ctx, const void *send, void *recv, size_t bytes_each);
    edm2_status (*comm_barrier)(void *ctx);
} edm2_host;

/* ---- Plugin descriptors and the entry symbol --------------------------------------------------- */

typedef struct edm2_plugin_desc {
    uint32_t struct_size;
    const char *id;          /* e.g. "mp_unet"; unique per (kind, backend) */
    edm2_kind kind;
    edm2_backend_id backend;
    const char *version;     /* the plugin's own version, e.g. "1.0.0" */
    const char *description; /* one line */
    const edm2_config_key *keys; /* the config schema; may be NULL when key_count is 0 */
    uint32_t key_count;
    /* Optional (may be NULL). Called by the host before create(), e.g. when listing plugins.
     * Returns EDM2_OK when the plugin can run here; otherwise writes a one-line reason into
     * `why` (capacity `why_len`, always NUL-terminated), e.g. "no CUDA device". Must not log. */
    edm2_status (*probe)(char *why, size_t why_len);
    /* Kind-specific function table (see `edm2_kind`), static, never NULL. */
    const void *vtable;
} edm2_plugin_desc;

/* The one exported symbol. `abi` must stay the first field in every future version. */
typedef struct edm2_plugin_entry_t {
    edm2_version abi;
    uint32_t struct_size;
    uint32_t plugin_count;
    const edm2_plugin_desc *const *plugins;
} edm2_plugin_entry_t;

/* Declares the exported entry of a plugin .so listing the given descriptors, e.g.
 *     static const edm2_plugin_desc *const k_plugins[] = { &k_heun, &k_euler };
 *     EDM2_DEFINE_ENTRY(k_plugins)                                                              */
#ifdef __cplusplus
#define EDM2_ENTRY_LINKAGE extern "C"
#else
#define EDM2_ENTRY_LINKAGE
#endif
#define EDM2_DEFINE_ENTRY(plugin_array)                                                          \
    EDM2_ENTRY_LINKAGE EDM2_EXPORT const edm2_plugin_entry_t edm2_plugin_entry = {               \
        {EDM2_ABI_MAJOR, EDM2_ABI_MINOR}, (uint32_t)sizeof(edm2_plugin_entry_t),                 \
        (uint32_t)(sizeof(plugin_array) / sizeof((plugin_array)[0])), (plugin_array)};

#ifdef __cplusplus
}
#endif
#endif /* EDM2_PLUGIN_H */

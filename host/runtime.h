/* runtime.h: live plugin instances for a job: the backend, and networks with their parameter arenas
 * (host-side helpers to create, upload, download and free them). */
#ifndef EDM2_HOST_RUNTIME_H
#define EDM2_HOST_RUNTIME_H

#include "edm2/edm2.h"
#include "errors.h"
#include "plugin_loader.h"

typedef struct runtime {
    edm2_host services;
    const plugin_rec *backend_rec;
    const edm2_backend_vtable *bvt;
    edm2_backend *b;
    edm2_backend_ops ops;
} runtime;

/* threads <= 0: all cores. */
int runtime_open(runtime *rt, const plugin_rec *backend, const edm2_config *cfg, int threads, edm2_err *err);
void runtime_close(runtime *rt);
/* Backend memory helpers; they log nothing themselves, errors come back in err. */
float *rt_alloc(runtime *rt, size_t floats, edm2_err *err);
void rt_free(runtime *rt, void *p);
int rt_upload(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err);
int rt_download(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err);
/* Host memory for rt_upload_async (page-locked on CUDA; malloc where the backend offers none). */
void *rt_host_alloc(runtime *rt, size_t bytes);
void rt_host_free(runtime *rt, void *p);
/* Queues an upload from rt_host_alloc memory without waiting (a plain upload where the backend has no
 * upload_async); src must stay unchanged until the backend's queue completes (synchronize, download, a
 * reduction, nan_to_zero). */
int rt_upload_async(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err);

typedef struct net_instance {
    const plugin_rec *rec;
    const edm2_network_vtable *vt;
    edm2_network *net;
    edm2_network_info info;
    float *params; /* arena, backend memory */
} net_instance;

/* Creates the network instance and reads its info (the parameter table); no parameter arena yet. */
int net_create(net_instance *ni, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err);
/* Allocates the parameter arena (backend memory). */
int net_alloc_params(net_instance *ni, runtime *rt, edm2_err *err);
/* net_create + net_alloc_params. */
int net_open(net_instance *ni, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err);
void net_close(net_instance *ni, runtime *rt);
edm2_network_ref net_ref(const net_instance *ni);
/* Index of the table entry called `name`, or -1. */
long net_param_index(const net_instance *ni, const char *name);

#endif

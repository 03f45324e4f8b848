/* runtime.c: creating and destroying backend and network instances for the host's jobs. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "log.h"

int runtime_open(runtime *rt, const plugin_rec *backend, const edm2_config *cfg, int threads, edm2_err *err) {
    memset(rt, 0, sizeof *rt);
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    rt->services = log_host_services(threads);
    comm_fill_host(&rt->services);
    rt->backend_rec = backend;
    rt->bvt = backend->desc->vtable;
    char why[256] = "";
    if (backend->desc->probe && backend->desc->probe(why, sizeof why) != EDM2_OK)
        return err_set(err, "backend %s cannot run here: %s", backend->desc->id, why);
    if (rt->bvt->create(&rt->services, cfg, &rt->b) != EDM2_OK)
        return err_plugin(err, "backend %s", backend->desc->id);
    rt->ops.vt = rt->bvt;
    rt->ops.b = rt->b;
    return 0;
}

void runtime_close(runtime *rt) {
    if (rt->b) rt->bvt->destroy(rt->b);
    rt->b = NULL;
}

float *rt_alloc(runtime *rt, size_t floats, edm2_err *err) {
    void *p = NULL;
    if (rt->bvt->alloc(rt->b, floats * sizeof(float), &p) != EDM2_OK) {
        err_plugin(err, "out of backend memory (%.1f MiB more)", floats * sizeof(float) / 1048576.0);
        return NULL;
    }
    return p;
}

void rt_free(runtime *rt, void *p) {
    if (p) rt->bvt->free(rt->b, p);
}

int rt_upload(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err) {
    return rt->bvt->upload(rt->b, dst, src, floats * sizeof(float)) == EDM2_OK ? 0 : err_set(err, "upload failed");
}

int rt_download(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err) {
    return rt->bvt->download(rt->b, dst, src, floats * sizeof(float)) == EDM2_OK ? 0 : err_set(err, "download failed");
}

/* The ABI 1.1 functions for uploads that do not stall, when the backend has them. */
static int has_async(const runtime *rt) {
    const edm2_backend_vtable *vt = rt->bvt;
    return vt->struct_size >= offsetof(edm2_backend_vtable, upload_async) + sizeof vt->upload_async && vt->host_alloc &&
           vt->host_free && vt->upload_async;
}

void *rt_host_alloc(runtime *rt, size_t bytes) {
    if (!has_async(rt)) return malloc(bytes ? bytes : 1);
    void *p = NULL;
    return rt->bvt->host_alloc(rt->b, bytes, &p) == EDM2_OK ? p : NULL;
}

void rt_host_free(runtime *rt, void *p) {
    if (!has_async(rt)) free(p);
    else rt->bvt->host_free(rt->b, p);
}

int rt_upload_async(runtime *rt, float *dst, const float *src, size_t floats, edm2_err *err) {
    if (!has_async(rt)) return rt_upload(rt, dst, src, floats, err);
    return rt->bvt->upload_async(rt->b, dst, src, floats * sizeof(float)) == EDM2_OK ? 0 : err_set(err, "upload failed");
}

int net_create(net_instance *ni, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err) {
    memset(ni, 0, sizeof *ni);
    ni->rec = rec;
    ni->vt = rec->desc->vtable;
    if (ni->vt->create(&rt->services, cfg, &rt->ops, &ni->net) != EDM2_OK)
        return err_plugin(err, "network %s", rec->desc->id);
    ni->info.struct_size = sizeof ni->info;
    if (ni->vt->get_info(ni->net, &ni->info) != EDM2_OK) return err_plugin(err, "network %s: get_info failed", rec->desc->id);
    return 0;
}

int net_alloc_params(net_instance *ni, runtime *rt, edm2_err *err) {
    ni->params = rt_alloc(rt, ni->info.arena_floats, err);
    return ni->params ? 0 : -1;
}

int net_open(net_instance *ni, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err) {
    return net_create(ni, rt, rec, cfg, err) || net_alloc_params(ni, rt, err) ? -1 : 0;
}

void net_close(net_instance *ni, runtime *rt) {
    if (ni->net) ni->vt->destroy(ni->net);
    rt_free(rt, ni->params);
    memset(ni, 0, sizeof *ni);
}

edm2_network_ref net_ref(const net_instance *ni) {
    edm2_network_ref r = {ni->vt, ni->net};
    return r;
}

long net_param_index(const net_instance *ni, const char *name) {
    for (size_t i = 0; i < ni->info.param_count; i++)
        if (strcmp(ni->info.params[i].name, name) == 0) return (long)i;
    return -1;
}

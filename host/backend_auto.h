/* backend_auto.h: `[backend] plugin = auto`: the CUDA backend where a usable CUDA device is present and every
 * plugin the config names has a build for it, else the CPU backend. (A config without [backend] runs on the
 * CPU, as the tests' configs do: the same bits on every machine.) */
#ifndef EDM2_HOST_BACKEND_AUTO_H
#define EDM2_HOST_BACKEND_AUTO_H

#include "config.h"
#include "errors.h"
#include "plugin_loader.h"

/* Resolves `[backend] plugin = auto` of config c, before its validation: the chosen plugin's id is written
 * into c (the entry keeps its file and line), so that the run's config.ini, its snapshots and a resume
 * record what ran; how and why it was chosen goes into note[len] (also a debug line), e.g. "chosen by
 * plugin = auto: cuda: no CUDA device". Any other value, or none, is left as it is (note empty). 0, or -1
 * with err set: the processes of an MPI group chose differently, [backend] sets a key of the backend not
 * chosen (the cuda backend's device), or no memory. */
int backend_resolve_auto(cfg *c, const plugin_registry *r, char *note, size_t len, edm2_err *err);
/* What `auto` chooses on this machine for a config whose plugins all have CUDA builds: "cuda" or "cpu", and
 * why in why[len] (for `edm2host plugins`). */
const char *backend_auto_choice(const plugin_registry *r, char *why, size_t len);

#endif
